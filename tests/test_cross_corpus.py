"""Several corpora in one run: namespacing, label harmonisation, split=corpus, per-corpus metrics,
per-corpus normalisation and the corpus-shift section of the diagnosis.

Two tiny synthetic corpora stand in for real ones: ``a`` records in a quiet room with a flat channel;
``b`` through a telephone band, 12 dB quieter, over noise at 15 dB SNR (other speakers too).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter

import pytest
import torch
from hydra.utils import instantiate

from ser.build import build_corpus, build_datamodule
from tests.conftest import EMODB, SAVEE

SHIFTED = ", channel_hz: [300, 3400], noise_snr_db: 15, level_db: -12"


def corpora(cache_dir, *, b_seed: int = 2, b_conditions: str = SHIFTED, b_emotions="[neutral, happiness, sadness, anger]",
            speakers: tuple[int, int] = (4, 4), per_speaker: int = 12) -> str:
    """The ``data.corpora`` override for corpora ``a`` and ``b``."""
    one = ("{adapter: synthetic, root: %s, num_speakers: %d, utterances_per_speaker: %d, duration_s: [0.5, 1.2], "
           "difficulty: 0.2, emotions: %s, seed: %d%s}")
    a = one % (cache_dir, speakers[0], per_speaker, "[neutral, happiness, sadness, anger]", 1, "")
    b = one % (cache_dir, speakers[1], per_speaker, b_emotions, b_seed, b_conditions)
    return f"data.corpora={{a: {a}, b: {b}}}"


def loaded(make_cfg, cache_dir, *overrides, **kw):
    cfg = make_cfg("data=multi", corpora(cache_dir, **kw), *overrides)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.load()
    return cfg, dm


def test_speakers_are_namespaced_and_classes_harmonised(make_cfg, cache_dir, caplog):
    with caplog.at_level(logging.INFO, logger="ser.data.decoded"):
        _, dm = loaded(make_cfg, cache_dir, b_emotions="[neutral, sadness, anger, fear]", speakers=(4, 3), per_speaker=8)
    # both synthetic corpora call their speakers s01, s02, ...: the prefix keeps them apart
    assert dm.corpus.speakers == [f"a/s{i:02d}" for i in range(1, 5)] + [f"b/s{i:02d}" for i in range(1, 4)]
    assert {u.extras["corpus"] for u in dm.corpus.utterances} == {"a", "b"}
    assert dm.corpus.corpus_names == ["a", "b"] and dm.corpus.label == "a + b"
    assert dm.corpus.class_names == ["neutral", "sadness", "anger"]  # what both have, in canonical order
    line = next(r.getMessage() for r in caplog.records if "every corpus has" in r.getMessage())
    assert "happiness (a: 8)" in line and "fear (b: 6)" in line  # 4 speakers x 2, 3 speakers x 2 of each class
    # data.labels still selects, and a class one corpus lacks is named
    with caplog.at_level(logging.WARNING, logger="ser.data.decoded"):
        _, dm = loaded(make_cfg, cache_dir, "data.labels=[anger,happiness]", b_emotions="[neutral, sadness, anger, fear]",
                       speakers=(4, 3), per_speaker=8)
    assert dm.corpus.class_names == ["anger", "happiness"]
    assert any("corpus b has no ['happiness']" in r.getMessage() for r in caplog.records)


def test_corpus_split_folds_and_in_domain_splits(make_cfg, cache_dir):
    cfg, dm = loaded(make_cfg, cache_dir, "split=corpus")
    corpus = [u.extras["corpus"] for u in dm.corpus.utterances]
    loco = instantiate(cfg.split).folds(dm.corpus.utterances)
    assert [f.name for f in loco] == ["a", "b"] and [f.test_corpora for f in loco] == [["a"], ["b"]]
    for fold in loco:
        assert {corpus[i] for i in fold.test} == set(fold.test_corpora)
        assert {corpus[i] for i in fold.train + fold.val} == {"a", "b"} - set(fold.test_corpora)
        assert fold.val  # validation speakers come from the training corpus
    cfg.split.test = "b"
    (single,) = instantiate(cfg.split).folds(dm.corpus.utterances)
    assert (single.train, single.val, single.test) == (loco[1].train, loco[1].val, loco[1].test)
    cfg.split.test = "c"
    with pytest.raises(ValueError, match=r"split.test=c: not one of the corpora \['a', 'b'\]"):
        instantiate(cfg.split).folds(dm.corpus.utterances)
    # in-domain splits over the namespaced speakers still work
    cfg = make_cfg("data=multi", corpora(cache_dir), "split=loso")
    assert len(instantiate(cfg.split).folds(dm.corpus.utterances)) == 8
    # one corpus is not a cross-corpus set
    single_corpus = make_cfg("split=corpus", "debug=smoke")
    dm1 = build_corpus(single_corpus)
    dm1.load()
    with pytest.raises(ValueError, match="split=corpus needs several corpora: use data=multi"):
        instantiate(single_corpus.split).folds(dm1.utterances)


def test_balance_corpus_draws_each_corpus_equally(make_cfg, cache_dir):
    cfg, dm = loaded(make_cfg, cache_dir, "split=holdout", "split.test=[b/s01]", "split.val=0", "loader.balance=corpus",
                     speakers=(4, 3), per_speaker=8, b_seed=3, b_conditions="")
    fold = instantiate(cfg.split).folds(dm.corpus.utterances)[0]
    dm.use_fold(fold)
    drawn = Counter()
    for epoch in range(10):
        loader = dm.train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            drawn.update(batch["corpora"].tolist())
    trained = Counter(dm.corpus.corpus_index(i) for i in fold.train)
    assert trained[0] == 2 * trained[1]  # 4 speakers of a against 2 training speakers of b, 8 utterances each
    assert 0.75 < drawn[0] / drawn[1] < 1.33  # 2 without loader.balance


def test_corpus_normalisation_uses_each_corpus_own_statistics():
    from ser.features.normalize import FeatureNorm
    from ser.nn import Moments

    norm = FeatureNorm("corpus", 2)
    assert norm.group_key == "corpora" and norm.needs_fit and norm.needs_speakers
    feats = torch.tensor([[[1.0, 3.0]] * 2, [[10.0, 30.0]] * 2])  # (B=2, F=2, T=2): corpus 1 is 10x louder
    frames, corpora = torch.tensor([2, 2]), torch.tensor([0, 1])
    norm.fit(Moments.of([(feats, frames, None)], 1, 2))
    norm.fit_speakers(Moments.of([(feats, frames, corpora)], 2, 2))
    out = norm(feats, frames, corpora)
    assert torch.allclose(out, torch.tensor([[[-1.0, 1.0]] * 2] * 2), atol=1e-3)  # each corpus centred on itself
    assert not torch.allclose(norm(feats, frames, None), out)  # new audio (no corpus): the training statistics


@pytest.fixture(scope="module")
def trained_pairs(tmp_path_factory, cache_dir):
    """Trained on ``a``, tested on ``b``: once with ``b`` shifted, once with ``b`` a second draw of a's conditions."""
    from ser.train import train
    from tests.conftest import compose_config

    runs = {}
    for kind, conditions in (("shifted", SHIFTED), ("same", "")):
        out = tmp_path_factory.mktemp(kind)
        cfg = compose_config(["data=multi", corpora(cache_dir, b_conditions=conditions),
                              "split=corpus", "split.test=b", "model=pool", "trainer.max_epochs=8", "loader.batch_size=8"],
                             out, cache_dir)
        runs[kind] = (out, train(cfg))
    return runs


def test_cross_corpus_run_writes_per_corpus_metrics(trained_pairs):
    out, metrics = trained_pairs["shifted"]
    assert metrics["test/b/ua"] == pytest.approx(metrics["test/ua"])
    assert {f"test/b/recall/{c}" for c in ("neutral", "happiness", "sadness", "anger")} <= set(metrics)
    assert not any(k.startswith("test/a/") for k in metrics)  # a was not tested


def test_corpus_shift_section_tells_shifted_from_same_conditions(trained_pairs):
    from ser.diagnose.context import Options
    from ser.diagnose.core import diagnose

    evidence = {}
    for kind, (out, _) in trained_pairs.items():
        report = diagnose(out, Options(snrs=(), occlude=False, probes=False, retrain="false"))
        evidence[kind] = json.loads((report.parent / "diagnosis.json").read_text())
        assert "## Corpus shift" in report.read_text()
        page = (report.parent / "report.html").read_text()  # the page of a data=multi run, corpus in its map
        assert "<h2>Corpus shift</h2>" in page and 'class="clip"' in page
        embedding = evidence[kind]["checks"]["embedding"]
        assert set(embedding["map"]["corpus"]) == {"a", "b"} and "corpus_over_emotion" in embedding  # test + reference
    shifted, same = evidence["shifted"]["checks"]["corpus_shift"], evidence["same"]["checks"]["corpus_shift"]
    assert evidence["shifted"]["checks"]["embedding"]["corpus_over_emotion"] > \
        evidence["same"]["checks"]["embedding"]["corpus_over_emotion"]  # the shifted corpus gathers apart
    assert shifted["directions"] == ["a -> b"] and shifted["in_domain_from"] == "validation"
    assert shifted["corpus_accuracy"] > 0.9 > same["corpus_accuracy"] + 0.15
    assert shifted["gap"] > same["gap"] + 0.08  # 0.25 against 0.10 when written
    bias = [c for c in evidence["shifted"]["causes"] if c["id"] == "corpus_shift"]
    assert bias and bias[0]["score"] == pytest.approx(shifted["gap"], abs=1e-3)
    assert "on b" in bias[0]["evidence"] and "features.normalize=corpus" in bias[0]["try"]
    # advice as exact overrides; one training corpus: nothing for loader.balance=corpus to balance
    assert bias[0]["advice"] == ["features.normalize=corpus", "augment=full", "experiment=pretrained"]
    assert "transductive" in bias[0]["try"]
    # the test corpus's recording differs as a whole: that is the corpus shift, not a second cause
    assert evidence["shifted"]["checks"]["mismatch"]["skipped"].startswith("every fold is tested on another corpus")


def test_leave_one_corpus_out_summary_and_resume(make_cfg, cache_dir, tmp_path):
    from ser.train import train

    cfg = make_cfg("data=multi", corpora(cache_dir), "split=corpus", "features.normalize=corpus",
                   "trainer.max_epochs=1", "model.hidden=16")
    train(cfg)
    summary = json.loads((tmp_path / "run" / "cv_summary.json").read_text())
    assert [(f["fold"], f["test_corpora"]) for f in summary["folds"]] == [("a", ["a"]), ("b", ["b"])]
    assert "| fold | held-out corpus |" in (tmp_path / "run" / "cv_summary.md").read_text()
    stored = torch.load(tmp_path / "run" / "fold_a" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert stored["normalizer.speaker_mean"].shape[0] == 2  # normalize=corpus: one row per corpus
    # resume skips finished folds: the summary comes back identical without training
    (tmp_path / "run" / "fold_b" / "checkpoints").rename(tmp_path / "moved")
    cfg.resume = True
    train(cfg)
    assert not (tmp_path / "run" / "fold_b" / "checkpoints").exists()
    again = json.loads((tmp_path / "run" / "cv_summary.json").read_text())
    assert again["folds"] == summary["folds"]


@pytest.mark.skipif(not (EMODB.is_dir() and SAVEE.is_dir()), reason="needs ../shared/data/emodb and savee")
def test_real_emodb_and_savee(make_cfg):
    """Listing and splitting only (no decoding): the real corpora meet as the issue describes."""
    cfg = make_cfg("data=multi", f"data.corpora={{emodb: {EMODB}, savee: {SAVEE}}}", "split=corpus")
    corpus = instantiate(cfg.data.corpus)(corpora=cfg.data.corpora)
    utterances, problems = corpus.scan()
    assert not problems and len(utterances) == 535 + 480
    speakers = {u.speaker for u in utterances}
    assert "emodb/03" in speakers and "savee/DC" in speakers and len(speakers) == 14
    folds = instantiate(cfg.split).folds(utterances)
    assert [(f.name, len(f.test)) for f in folds] == [("emodb", 535), ("savee", 480)]
    shared = set.intersection(*({u.label for u in utterances if u.extras["corpus"] == c} for c in ("emodb", "savee")))
    assert shared == {"anger", "disgust", "fear", "happiness", "neutral", "sadness"}
    for fold in folds:  # validation speakers from the training corpus only
        assert {utterances[i].extras["corpus"] for i in fold.val} == {"emodb", "savee"} - {fold.name}


def test_in_domain_split_over_two_corpora_reports_each(make_cfg, cache_dir, caplog, recwarn):
    from ser.train import train

    cfg = make_cfg("data=multi", corpora(cache_dir), "split=holdout", "split.test=[a/s01,b/s01]", "split.val=[a/s02]",
                   "trainer.max_epochs=1", "model.hidden=16")
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    # the libraries' known noise stays out of the log (ser.quiet)
    assert "litlogger" not in caplog.text and not [w for w in recwarn if "LeafSpec" in str(w.message)]
    # Lightning's own console handler is gone where the root logger prints already: no line twice
    assert not [h for h in logging.getLogger("lightning").handlers if type(h) is logging.StreamHandler]
    # one line per epoch, for logs read without a progress bar
    assert re.search(r"epoch 1/1  train loss \d\.\d{3}  train UA \d\.\d{3}  val UA \d\.\d{3}  [\d.]+ s/epoch", caplog.text)
    # both corpora hold 3 of each class per speaker, so the pooled UA is the mean of the two
    assert metrics["test/ua"] == pytest.approx((metrics["test/a/ua"] + metrics["test/b/ua"]) / 2, abs=1e-5)
    assert {"test/a/recall/anger", "test/b/wa"} <= set(metrics)


def test_a_manifest_corpus_column_is_metadata_in_a_single_corpus_run(make_cfg, cache_dir, tmp_path):
    _, multi = loaded(make_cfg, cache_dir, speakers=(4, 3), per_speaker=8, b_seed=3, b_conditions="")
    rows = ["path,label,speaker,corpus"]
    rows += [f"{u.path},{u.label},{u.speaker},{u.extras['corpus']}" for u in multi.corpus.utterances]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    cfg = make_cfg("data=manifest", f"data.root={tmp_path}", "split=holdout")
    dm = build_datamodule(cfg)
    dm.load()
    corpus = dm.corpus
    assert corpus.corpus_names == ["manifest"] and {corpus.corpus_index(i) for i in range(len(corpus))} == {0}
    # split=corpus still reads the column, so a hand-made manifest can hold a cross-corpus set
    cfg = make_cfg("data=manifest", f"data.root={tmp_path}", "split=corpus", "split.test=b")
    (fold,) = instantiate(cfg.split).folds(dm.corpus.utterances)
    assert {dm.corpus.utterances[i].extras["corpus"] for i in fold.test} == {"b"}


def test_multi_reads_each_corpus_through_its_own_conf_data_option():
    """A new corpus is its adapter, its conf/data option and a test: data=multi finds it there, no registry."""
    from ser.corpora.hf import HFCorpus
    from ser.corpora.multi import adapter_class, adapters
    from ser.corpora.ravdess import RAVDESS

    assert {"emodb", "savee", "manifest", "hf", "synthetic"} <= set(adapters()) and "multi" not in adapters()
    cls, defaults = adapter_class("ravdess")
    assert cls is RAVDESS and defaults == {"channel": "speech"}  # the option's defaults come along
    assert adapter_class("hf")[0] is HFCorpus
    with pytest.raises(ValueError, match="no corpus option called 'nope'"):
        adapter_class("nope")
