"""The synthetic corpus: deterministic, sized as asked, and emotions shift the voice as claimed."""

from collections import defaultdict

import numpy as np
import pytest
import soundfile as sf

from ser.corpora.synthetic import SyntheticCorpus


def small(root, **kw):
    args = dict(num_speakers=4, utterances_per_speaker=14, duration_s=(1.0, 1.5), seed=3) | kw
    return SyntheticCorpus(str(root), **args)


def test_deterministic_from_seed(tmp_path):
    a, b = small(tmp_path / "a").utterances(), small(tmp_path / "b").utterances()
    assert [(u.label, u.speaker) for u in a] == [(u.label, u.speaker) for u in b]
    for ua, ub in zip(a[:10], b[:10]):
        np.testing.assert_array_equal(sf.read(ua.path)[0], sf.read(ub.path)[0])
    c = small(tmp_path / "c", seed=4).utterances()
    assert not np.array_equal(sf.read(a[0].path)[0], sf.read(c[0].path)[0])


def test_size_speakers_and_proportions(tmp_path):
    corpus = small(tmp_path, class_proportions={"anger": 4, "disgust": 1}, emotions=["anger", "disgust", "neutral"],
                   utterances_per_speaker=12)
    utts = corpus.utterances()
    assert len(utts) == 4 * 12
    assert len({u.speaker for u in utts}) == 4
    counts = {label: sum(u.label == label for u in utts) for label in ("anger", "disgust", "neutral")}
    assert counts == {"anger": 4 * 8, "disgust": 4 * 2, "neutral": 4 * 2}
    info = sf.info(utts[0].path)
    assert info.samplerate == 16000 and info.channels == 1
    assert 1.0 <= info.duration <= 1.5 + 1e-3


def f0_and_level(path):
    """Median autocorrelation F0 (Hz) of the loud frames, and RMS level (dB) of those frames."""
    x, sr = sf.read(path)
    frames = np.lib.stride_tricks.sliding_window_view(x, 640)[::160]
    rms = np.sqrt((frames**2).mean(1))
    loud = frames[rms > 0.5 * rms.max()]
    f0s = []
    for fr in loud:
        fr = fr - fr.mean()
        ac = np.correlate(fr, fr, "full")[639:]
        lo, hi = sr // 500, sr // 60
        f0s.append(sr / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(f0s)), float(20 * np.log10(np.sqrt((loud**2).mean())))


def centroid(path):
    x, sr = sf.read(path)
    spec = np.abs(np.fft.rfft(x)) ** 2
    return float((np.fft.rfftfreq(len(x), 1 / sr) * spec).sum() / spec.sum())


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    utts = small(tmp_path_factory.mktemp("syn"), utterances_per_speaker=42, noise_snr_db=None).utterances()
    out = defaultdict(lambda: defaultdict(list))
    for u in utts:
        f0, level = f0_and_level(u.path)
        out[u.label]["f0"].append(f0)
        out[u.label]["level"].append(level)
        out[u.label]["centroid"].append(centroid(u.path))
        out[u.label]["dur"].append(u.extras["duration_s"])
    return {label: {k: float(np.median(v)) for k, v in d.items()} for label, d in out.items()}


def test_anger_is_higher_louder_and_brighter_than_sadness(measured):
    anger, sadness, neutral = measured["anger"], measured["sadness"], measured["neutral"]
    assert anger["f0"] > neutral["f0"] > sadness["f0"]
    assert anger["level"] > neutral["level"] + 3 > sadness["level"] + 6
    assert anger["centroid"] > sadness["centroid"]


def test_fear_and_happiness_raise_f0_disgust_and_boredom_lower_it(measured):
    for label in ("fear", "happiness"):
        assert measured[label]["f0"] > measured["neutral"]["f0"], label
    for label in ("disgust", "boredom"):
        assert measured[label]["f0"] < measured["neutral"]["f0"], label


def test_bad_settings_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="emotions"):
        SyntheticCorpus(str(tmp_path), emotions=["anger", "jealousy"])
    with pytest.raises(ValueError, match="num_speakers"):
        SyntheticCorpus(str(tmp_path), num_speakers=2)
