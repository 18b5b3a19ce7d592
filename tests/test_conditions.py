"""Multi-condition training (conditions.*): degraded copies of every training utterance, made once, the same in
every fold and run; babble from other training speakers only; through a frozen upstream, encoded and cached."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from ser.build import build_datamodule
from ser.data.conditions import Conditions, Plan, reverberate, shift_voice, simulate_rir
from ser.data.dataset import ClipDataset
from ser.data.store import materialize
from ser.data.upstream_cache import Upstream


def _tone(seconds=1.0, rate=16000, seed=0):
    t = torch.arange(int(seconds * rate)) / rate
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.sin(2 * torch.pi * 220 * t) + 0.01 * torch.randn(len(t), generator=g)


def test_a_copy_is_decided_by_the_audio_and_its_number_and_keeps_its_length():
    cond = Conditions(copies=4, reverb_p=0.0, seed=3)
    assert cond.plan("abc", 1) == cond.plan("abc", 1)
    assert len({cond.plan("abc", k) for k in range(4)}) == 4  # the copies differ from each other
    assert cond.plan("abc", 1) != Conditions(copies=4, reverb_p=0.0, seed=4).plan("abc", 1)
    wave = _tone()
    for k in range(4):
        plan = cond.plan("abc", k)
        copy = cond.render(wave, plan, 16000, babble=[_tone(seed=9)])
        assert copy.shape == wave.shape and copy.dtype == torch.float32
        assert torch.equal(copy, cond.render(wave, plan, 16000, babble=[_tone(seed=9)]))
        assert copy.abs().max() <= 1.0


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_is_added_at_the_planned_snr(kind):
    cond = Conditions(copies=1)
    wave = _tone(2.0)
    plan = Plan(rt60_s=None, telephone=False, noise=kind, snr_db=5.0, gain_db=0.0, seed=1)
    noisy = cond.render(wave, plan, 16000, babble=[_tone(2.0, seed=s) for s in (5, 6, 7)])
    noise = (noisy - wave).double()
    snr = 10 * torch.log10(wave.double().pow(2).mean() / noise.pow(2).mean())
    assert abs(float(snr) - 5.0) < 0.1


def test_reverberation_keeps_the_level_and_starts_at_the_direct_path():
    pytest.importorskip("pyroomacoustics", reason="rooms come with the augment extra")
    rng = np.random.default_rng(0)
    short, long = simulate_rir(0.2, rng, 16000), simulate_rir(0.8, rng, 16000)
    assert short[0] == pytest.approx(1.0) and long[0] == pytest.approx(1.0)  # aligned to the direct path
    tail = lambda h: np.sum(h[800:] ** 2) / np.sum(h**2)  # noqa: E731 - energy after 50 ms
    assert tail(long) > tail(short)  # a longer RT60 puts more energy late
    x = _tone().double().numpy()
    y = reverberate(x, long)
    assert len(y) == len(x) and np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)))


@pytest.mark.parametrize("semitones", [-3.0, 2.0])
def test_another_voice_moves_the_pitch_and_keeps_length_and_level(semitones):
    t = np.arange(32000) / 16000
    x = 0.2 * np.sin(2 * np.pi * 200 * t)
    y = shift_voice(x, semitones, 16000)
    assert len(y) == len(x) and np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)))
    peak = np.fft.rfftfreq(len(y), 1 / 16000)[np.argmax(np.abs(np.fft.rfft(y * np.hanning(len(y)))))]
    assert peak == pytest.approx(200 * 2 ** (semitones / 12), abs=2.0)


def test_voices_are_drawn_last_so_configs_without_them_keep_their_copies():
    plain, voiced = Conditions(copies=4, reverb_p=0.0), Conditions(copies=4, reverb_p=0.0, pitch_p=1.0)
    for k in range(4):
        a, b = plain.plan("abc", k), voiced.plan("abc", k)
        assert a.semitones is None and b.semitones is not None and -3 <= b.semitones <= 3
        assert (a.noise, a.snr_db, a.gain_db, a.seed) == (b.noise, b.snr_db, b.gain_db, b.seed)


def test_bad_conditions_are_named():
    with pytest.raises(ValueError, match="conditions.noises"):
        Conditions(copies=2, noises=["traffic"])
    with pytest.raises(ValueError, match="conditions.clean_p"):
        Conditions(copies=2, clean_p=1.5)
    with pytest.raises(ValueError, match="conditions.snr_db"):
        Conditions(copies=2, snr_db=[20, 0])
    with pytest.raises(ValueError, match="conditions.semitones"):
        Conditions(copies=2, semitones=[3, -3])


def test_an_item_is_the_clean_clip_with_clean_p_and_a_copy_otherwise():
    clips = [torch.zeros(10)]
    copies = [[torch.full((10,), 1.0), torch.full((10,), 2.0)]]
    torch.manual_seed(0)
    drawn = [float(ClipDataset(clips, [0], random_crop=True, variants=copies, clean_p=0.25)[0][0][0]) for _ in range(400)]
    assert 0.15 < drawn.count(0.0) / 400 < 0.35
    assert drawn.count(1.0) > 100 and drawn.count(2.0) > 100
    always_clean = ClipDataset(clips, [0], variants=copies, clean_p=1.0)
    assert all(float(always_clean[0][0][0]) == 0.0 for _ in range(20))


def _module(make_cfg, *overrides):
    cfg = make_cfg("debug=smoke", "data.corpus.num_speakers=6", "split=loso", "conditions.copies=3",
                   "conditions.reverb_p=0", "conditions.noises=[babble]", "conditions.noise_p=1", *overrides)
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.load()
    return dm, instantiate(cfg.split).folds(dm.corpus.utterances)


def test_babble_mixes_other_training_speakers_of_the_fold_only(make_cfg):
    dm, folds = _module(make_cfg)
    for fold in folds[:2]:
        dm.use_fold(fold)
        loader = dm.train_dataloader()
        assert loader.dataset.variants is not None and len(loader.dataset.variants[0]) == 3
        babble = [key for key in dm.copies if len(key) == 4]
        assert len(babble) == 3 * len(fold.train)  # only this fold's babble copies are kept
        train = set(fold.train)
        for _, i, _, talkers in babble:
            assert talkers and set(talkers) <= train
            assert all(dm.corpus.utterances[j].speaker != dm.corpus.utterances[i].speaker for j in talkers)
            assert not {dm.corpus.utterances[j].speaker for j in talkers} & set(fold.test_speakers)


def test_copies_without_babble_are_made_once_for_every_fold(make_cfg, caplog):
    dm, folds = _module(make_cfg, "conditions.noises=[white,pink]")
    dm.use_fold(folds[0])
    dm.train_dataloader()
    made = dict(dm.copies)
    assert len(made) == 3 * len(folds[0].train)
    dm.use_fold(folds[1])
    with caplog.at_level("INFO"):
        dm.train_dataloader()
    # the second fold makes only the copies of the utterances the first fold held out
    new = set(folds[1].train) - set(folds[0].train)
    assert f"conditions: {3 * len(new)} new degraded copies" in caplog.text
    assert all(dm.copies[key] is made[key] for key in made)
    # evaluation never sees a copy
    assert dm.test_dataloader().dataset.variants is None
    assert folds[1].val and dm.val_dataloader().dataset.variants is None


def test_through_a_frozen_upstream_copies_are_encoded_and_cached(make_cfg, tmp_path, caplog):
    pytest.importorskip("resemblyzer", reason="the GE2E weights come with the pretrained extra")
    from ser.build import build_frontend

    cfg_overrides = ("features=ge2e", "model=pool", "features.layers=[3]", "conditions.noises=[white,pink]",
                     f"data.feature_cache_dir={tmp_path / 'features'}")
    dm, folds = _module(make_cfg, *cfg_overrides)
    frontend = build_frontend(make_cfg("debug=smoke", *cfg_overrides))[0]
    dm.use_fold(folds[0])
    dm.use_upstream(Upstream.of(frontend, "cpu", dm.corpus.upstream_cache))
    batch = next(iter(dm.train_dataloader()))
    assert "feats" in batch and batch["feats"].shape[1] == 256
    copy = materialize(next(iter(dm.copies.values())))  # a handle into the store, read per item
    assert copy.dtype == torch.float16 and copy.shape[0] == 256
    again, _ = _module(make_cfg, *cfg_overrides)  # a later run reads every copy from the disk cache
    again.use_fold(folds[0])
    again.use_upstream(Upstream.of(frontend, "cpu", again.corpus.upstream_cache))
    with caplog.at_level("INFO"):
        again.train_dataloader()
    n = 3 * len(folds[0].train)
    assert f"GE2E features: {n} of {n} utterances from the cache" in caplog.text
