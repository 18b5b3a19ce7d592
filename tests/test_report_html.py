"""report.html: one self-contained page (nothing fetched), every figure and clip inlined, every clip decodable and
the audio it names, the confusion matrix's cells each opening its utterances, the advice as train.py commands."""

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser import rundir
from ser.audio import read_audio, resample
from ser.diagnose.context import Options
from ser.diagnose.core import diagnose
from ser.diagnose.html import HtmlOptions
from ser.train import train

RUN = ["data.corpus.num_speakers=6", "data.corpus.utterances_per_speaker=28", "data.corpus.duration_s=[0.6,1.2]",
       "model=pool", "trainer.max_epochs=6", "loader.batch_size=16", "split.test=[s01]", "split.val=[s02]",
       "data.corpus.class_proportions={anger:0.15,sadness:0.15}", "data.corpus.difficulty=0.3"]


class Page(HTMLParser):
    """Every tag's attributes, and the text of each figure caption and code block."""

    def __init__(self):
        super().__init__()
        self.tags, self.captions, self.code, self._open = [], [], [], {}

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("figcaption", "code"):
            self._open[tag] = ""

    def handle_data(self, data):
        for tag in self._open:
            self._open[tag] += data

    def handle_endtag(self, tag):
        if tag in self._open:
            (self.captions if tag == "figcaption" else self.code).append(self._open.pop(tag))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from tests.conftest import compose_config

    tmp = tmp_path_factory.mktemp("html")
    cfg = compose_config(RUN, tmp / "run", tmp / "cache")
    train(cfg)
    rundir.write_overrides(Path(cfg.paths.output_dir), RUN)  # what train.py on the command line keeps
    report = diagnose(cfg.paths.output_dir, Options(snrs=(10,), retrain="false", occlude=False, probes=False))
    path = report.parent / "report.html"
    parsed = Page()
    parsed.feed(path.read_text())
    return path, parsed, report


def _decode(uri: str) -> tuple[np.ndarray, int]:
    head, data = uri.split(",", 1)
    assert head in ("data:audio/ogg;base64", "data:audio/flac;base64"), head
    return sf.read(io.BytesIO(base64.b64decode(data)))


def test_the_page_is_self_contained(page):
    path, parsed, _ = page
    links = [a.get("src") or a.get("href") for _, a in parsed.tags if a.get("src") or a.get("href")]
    assert links and not [x for x in links if re.match(r"(https?:)?//", x) or not x.startswith(("data:", "#"))]
    images = [a["src"] for t, a in parsed.tags if t == "img"]
    assert len(images) >= 5 and all(x.startswith("data:image/png;base64,") for x in images)
    assert path.stat().st_size < 15e6


def test_every_clip_decodes_to_the_audio_it_names(page):
    _, parsed, _ = page
    clips = [a["src"] for t, a in parsed.tags if t == "audio"]
    sources = [a["title"] for t, a in parsed.tags if t == "figure"]  # each clip's file, in full
    assert len(clips) == len(sources) == len(parsed.captions) >= 10
    checked = 0
    for uri, source, caption in zip(clips, sources, parsed.captions):
        clip, rate = _decode(uri)
        assert rate == HtmlOptions().sample_rate and 0 < len(clip) <= HtmlOptions().clip_s * rate + 1
        assert caption.startswith(Path(source).name)
        if "noise" in caption:
            continue
        wave, sr = read_audio(source)
        wave = resample(np.asarray(wave, dtype=np.float32).reshape(-1), sr, rate)[: len(clip)]
        assert abs(len(wave) - len(clip)) <= rate // 100
        n = min(len(wave), len(clip))
        assert np.corrcoef(wave[:n], clip[:n])[0, 1] > 0.9, source  # the named utterance, lossy but the same
        checked += 1
    assert checked >= 5


def test_the_confusion_cells_open_their_utterances_and_the_advice_is_commands(page):
    _, parsed, report = page
    cells = [a["data-cell"] for t, a in parsed.tags if t == "td" and "data-cell" in a]
    panels = {a["id"] for t, a in parsed.tags if t == "div" and a.get("class") == "panel"}
    assert cells and set(cells) == panels
    commands = [c for c in parsed.code if c.startswith("python train.py ")]
    causes = json.loads((report.parent / "diagnosis.json").read_text())["causes"]
    assert len(commands) == len([c for c in causes if c["advice"]]) >= 1
    assert all("split.test=" in c for c in commands)  # the run's own overrides, then the advice


def test_html_options_are_checked():
    with pytest.raises(ValueError, match="html.format='mp3'"):
        HtmlOptions(format="mp3")
    assert Options(html={"per_pair": 5}).html.per_pair == 5


def _chromium_selftest(path: Path) -> dict:
    from experiments.report_html.screenshot import selftest  # the screenshot script's own check, waited for


    return selftest("chromium", path.as_uri())


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_headless_chromium_draws_every_figure_and_decodes_every_clip(page, tmp_path):
    path, parsed, _ = page
    result = _chromium_selftest(path)
    assert result["clips"] == len([t for t, _ in parsed.tags if t == "audio"]) > 0 and result["broken_clips"] == []
    assert result["images"] >= 5 and result["broken_images"] == 0 and result["console_errors"] == []
    # the other side: a clip whose Ogg header is overwritten is reported, and so is a script that throws
    text = path.read_text()
    at = re.search(r'<audio[^>]*src="data:audio/[a-z]+;base64,', text).end() + 100
    text = text[:at] + "A" * 56 + text[at + 56:]
    (tmp_path / "broken.html").write_text(text.replace("</body>", "<script>noSuchFunction();</script></body>"))
    broken = _chromium_selftest(tmp_path / "broken.html")
    assert broken["broken_clips"] == [0] and "noSuchFunction" in " ".join(broken["console_errors"])


def test_tensorboard_holds_the_ranked_causes_and_the_confused_pairs_to_listen_to(page):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, _, report = page
    every = {"audio": 0, "tensors": 0, "images": 0}
    events = EventAccumulator(str(report.parent / "tensorboard"), size_guidance=every).Reload()
    audio, tensors, images = events.Tags()["audio"], events.Tags()["tensors"], events.Tags()["images"]
    assert "diagnosis/confusion" in images  # every figure of the report, as its PNG
    pairs = json.loads((report.parent / "diagnosis.json").read_text())["checks"]["confusions"]["pairs"]
    assert pairs and len([t for t in audio if t.startswith("confused/")]) >= min(3, pairs[0]["count"])
    assert any(t.startswith("diagnosis/causes") for t in tensors)  # add_text is stored as a tensor summary


def test_the_embedding_map_is_coloured_four_ways_with_its_speaker_against_emotion_number(page):
    _, parsed, report = page
    m = json.loads((report.parent / "diagnosis.json").read_text())["checks"]["embedding"]
    assert {"share", "chance", "lift"} <= set(m["emotion"]) and 0 <= m["emotion"]["share"] <= 1
    assert sum(m["map"]["test"]) == 28 and len(m["map"]["x"]) == len(m["map"]["true"]) > 28  # test + reference
    assert "speaker_over_emotion" in m and m["reference"] > 0
    assert "## Embedding" in report.read_text() and (report.parent / "embedding.png").is_file()
    projector = report.parent / "tensorboard" / "projector_config.pbtxt"
    assert projector.is_file() and "fold_utterances" in projector.read_text()


def test_neighbour_purity_tells_an_embedding_that_groups_by_speaker_from_one_that_groups_by_emotion():
    from ser.diagnose.checks.embedding import _purity, _standardised

    rng = np.random.default_rng(0)
    speaker, emotion = np.repeat(np.arange(4), 12), np.tile(np.arange(4), 12)
    by_speaker = _standardised(np.eye(4)[speaker] * 3 + rng.normal(size=(48, 4)))
    s_share, s_chance = _purity(by_speaker, speaker)
    e_share, e_chance = _purity(by_speaker, emotion)
    assert s_share / s_chance > 2.5 > 1.5 > e_share / e_chance  # who speaks, not how they feel
    assert s_chance == e_chance == pytest.approx(11 / 47)


def test_one_test_speaker_among_a_reference_shows_whether_it_gathers_apart():
    """Leave-one-speaker-out: scored on the test speaker's utterances only, neighbours among the fold's reference."""
    from ser.diagnose.checks.embedding import _purity, _standardised

    rng = np.random.default_rng(1)
    emotion = np.tile(np.arange(4), 15)  # 12 test utterances (speaker 0), then 48 reference from speakers 1-4
    speaker = np.repeat(np.arange(5), 12)
    queries = np.arange(12)
    apart = np.eye(4)[emotion] * 2 + rng.normal(size=(60, 4)) * 0.5
    apart[queries] += 6 * np.eye(4)[0] - 6 * np.eye(4)[1]  # the test speaker's voice moves all its utterances
    together = np.eye(4)[emotion] * 2 + rng.normal(size=(60, 4)) * 0.5
    for Z, gathers in ((apart, True), (together, False)):
        s_share, s_chance = _purity(_standardised(Z), speaker, queries)
        e_share, e_chance = _purity(_standardised(Z), emotion, queries)
        assert s_chance == pytest.approx(11 / 59)
        assert (_strength(s_share, s_chance) > _strength(e_share, e_chance)) == gathers


def _strength(share: float, chance: float) -> float:
    return (share - chance) / (1 - chance)
