"""``report.html``: the diagnosis as one self-contained page, to read and to listen to.

The same content and order as ``report.md`` (rendered with Python-Markdown), with every figure and
every audio clip inlined (``data:`` URIs: nothing is fetched, and the page can be mailed or moved),
plus what a text report cannot hold:

- **Listen**: players for the most confused pairs, the suspect labels, the worst test speakers and,
  under Noise, the same test utterances clean and with white noise at ``snr_db``; each with its file,
  speaker, given and predicted class and the top probabilities.
- **The confusion matrix as a map**: each cell opens the list of its test utterances with players.
- **Advice as commands**: each cause's advice as a full ``python train.py`` line (the run's own
  overrides plus the advice), with a copy button.

Clips are the first ``clip_s`` seconds at ``sample_rate``, mono, as the model heard them (injected test
audio degraded). Ogg Vorbis by default: on EmoDB speech at 16 kHz it takes 2.6x less than 16-bit FLAC
(14 kB against 37 kB for a 1.9 s utterance), which keeps a leave-one-speaker-out report of 535 test
utterances under 15 MB; ``format: flac`` keeps the samples exact.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import markdown
import numpy as np
import soundfile as sf
import torch
from torch.utils.tensorboard import SummaryWriter

from ser import rundir
from ser.acoustics import mix_at_snr, noise
from ser.audio import resample
from ser.diagnose.verify import followed, run_overrides  # the same merge verify=true trains with

log = logging.getLogger(__name__)
FORMATS = {"ogg": ("OGG", "VORBIS", "audio/ogg"), "flac": ("FLAC", "PCM_16", "audio/flac")}


@dataclass(frozen=True)
class HtmlOptions:
    """``conf/diagnose.yaml``'s ``html``: whether report.html is written and how many clips of what length."""

    enabled: bool = True
    clip_s: float = 4.0
    format: str = "ogg"
    sample_rate: int = 16000
    per_pair: int = 3
    suspects: int = 10
    speakers: int = 3
    per_speaker: int = 3
    per_cell: int = 4
    noise_examples: int = 2
    snr_db: float = 10.0

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"html.format={self.format!r}: one of {sorted(FORMATS)}")
        if self.clip_s <= 0:
            raise ValueError(f"html.clip_s={self.clip_s}: a length in seconds above 0")


@dataclass
class Row:
    """One utterance shown: its index into the corpus, fold (None: training audio), labels and probabilities."""

    index: int
    fold: str | None
    path: str
    speaker: str
    given: str
    predicted: str | None = None
    probs: np.ndarray | None = None
    snr_db: float | None = None


class Clips:
    """Encoded clips of the utterances shown, each read and encoded once."""

    def __init__(self, context, options: HtmlOptions):
        self.context, self.options = context, options
        self._done: dict[tuple, str] = {}

    def uri(self, row: Row) -> str:
        key = (row.index, row.fold, row.snr_db)
        if key not in self._done:
            self._done[key] = self._encode(self._wave(row))
        return self._done[key]

    def wave(self, row: Row) -> np.ndarray:
        """The clip's samples (at ``options.sample_rate``), as encoded."""
        return self._wave(row)

    def _wave(self, row: Row) -> np.ndarray:
        dm = self.context.dm
        if row.fold is not None and (dm.fold is None or dm.fold.name != row.fold):
            self.context.use(row.fold)  # the test audio as this fold served it (injected faults applied)
        wave = dm.wave(row.index) if row.fold is not None else dm.corpus.audio(row.index)
        x = np.asarray(wave, dtype=np.float64).reshape(-1)
        rate = dm.corpus.sample_rate
        x = x[: int(self.options.clip_s * rate)]
        if row.snr_db is not None:
            x = mix_at_snr(x, noise("white", len(x), np.random.default_rng(row.index)), row.snr_db)
        if rate != self.options.sample_rate:
            x = resample(x.astype(np.float32), rate, self.options.sample_rate)
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        return (x / peak * 0.99 if peak > 1.0 else x).astype(np.float32)  # the noisy copy may pass full scale

    def _encode(self, x: np.ndarray) -> str:
        fmt, subtype, mime = FORMATS[self.options.format]
        buf = io.BytesIO()
        sf.write(buf, x, self.options.sample_rate, format=fmt, subtype=subtype)
        return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def write(ev, context, out: Path, options: HtmlOptions, run_dir: Path | None = None) -> Path | None:
    """``out/report.html`` from ``out/report.md`` (and ``diagnosis.json``), figures and clips inlined."""
    if not options.enabled:
        return None
    start = time.monotonic()
    summary = rundir.read_json(out / "diagnosis.json") or {}
    rows = _test_rows(ev)
    clips = Clips(context, options)
    body = markdown.markdown(_lists_apart((out / "report.md").read_text()), extensions=["tables", "sane_lists"])
    body = _inline_figures(body, out)
    extra = {
        "Likely causes, ranked": _commands(summary, run_dir),
        "Confusions": _confusion_map(ev, rows, clips, options) + _pairs(ev, rows, clips, options),
        "Label quality": _suspects(ev, context, clips, options),
        "Noise": _noise(ev, rows, clips, options),
        "Speakers": _speakers(ev, rows, clips, options),
    }
    for title, block in extra.items():
        body = _after_section(body, title, block)
    path = out / "report.html"
    title = html.escape(str(summary.get("title", "Diagnosis")))
    path.write_text(PAGE.format(title=title, style=STYLE, script=SCRIPT, body=body))
    log.info("report.html: %.1f MB, %d clips, %.1f s", path.stat().st_size / 1e6, len(clips._done),
             time.monotonic() - start)
    return path


def _lists_apart(text: str) -> str:
    """A blank line before each list that follows a paragraph line (GitHub renders such lists; Python-Markdown
    needs the blank line)."""
    lines, out = text.splitlines(), []
    for k, line in enumerate(lines):
        item = re.match(r"\s*([-*]|\d+\.) ", line)
        before = lines[k - 1] if k else ""
        if item and before.strip() and not re.match(r"\s*([-*]|\d+\.) ", before) and not before.startswith(" "):
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n"


def write_tensorboard(ev, context, out: Path, options: HtmlOptions) -> None:
    """The diagnosis's TensorBoard log (``out/tensorboard``) gains the ranked causes under Text and the examples
    of the most confused pairs and the suspect labels under Audio (the same clips as report.html)."""
    summary = rundir.read_json(out / "diagnosis.json") or {}
    clips = Clips(context, options)
    rows = _test_rows(ev)
    writer = SummaryWriter(str(out / "tensorboard"))
    try:
        causes = [f"{k}. **{c.get('cause', c['id'])}** (UA at stake {c['score']:.3f}): {c.get('evidence', '')}"
                  for k, c in enumerate(summary.get("causes", []), 1)]
        writer.add_text("diagnosis/causes", "\n\n".join(causes) or "No cause costs 0.02 UA or more.")
        for p in (ev.measured.get("confusions") or {}).get("pairs", []):
            shown = [r for r in rows if r.given == p["true"] and r.predicted == p["predicted"]][: options.per_pair]
            for k, r in enumerate(shown):
                writer.add_audio(f"confused/{p['true']}_as_{p['predicted']}/{k}", clips.wave(r)[None],
                                 sample_rate=options.sample_rate)
        for k, r in enumerate(_suspect_rows(ev, context, options)):
            writer.add_audio(f"suspect_labels/{k}_{r.given}_likely_{r.predicted}", clips.wave(r)[None],
                             sample_rate=options.sample_rate)
        _projector(writer, ev)
    finally:
        writer.close()


def _projector(writer, ev) -> None:
    """The embedding map's fold under Projector: its test utterances' and reference utterances' embeddings with
    class, prediction, speaker, corpus and which part (test or reference) each is."""
    mp = (ev.measured.get("embedding") or {}).get("map")
    if not mp:
        return
    k = [f.fold for f in ev.folds].index(mp["fold"])
    x = ev.per_fold("embedding")[k]
    embedded = np.concatenate([x["embeddings"]] + ([x["reference"]["embeddings"]] if x.get("reference") else []))
    part = ["test" if t else "reference" for t in mp.get("test", [True] * len(embedded))]
    meta = [list(row) for row in zip(mp["true"], mp["predicted"], mp["speaker"], mp["corpus"], part)]
    writer.add_embedding(torch.as_tensor(embedded), metadata=meta, tag="fold_utterances",
                         metadata_header=["class", "predicted", "speaker", "corpus", "part"])


def _test_rows(ev) -> list[Row]:
    """The pooled test utterances in ``ev``'s order."""
    names = ev.class_names
    return [Row(i, f.fold, f.paths[k], str(f.speakers[k]), names[int(f.labels[k])], names[int(f.probs[k].argmax())],
                f.probs[k]) for f in ev.folds for k, i in enumerate(f.index)]


def _inline_figures(body: str, out: Path) -> str:
    def inline(match):
        name = match.group(1)
        if not (out / name).is_file():
            return match.group(0)
        data = base64.b64encode((out / name).read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    return re.sub(r'src="([^"/:]+\.png)"', inline, body)


def _after_section(body: str, title: str, block: str) -> str:
    """``block`` at the end of the section headed ``title`` (before the next ``<h2>``); unchanged without it."""
    if not block:
        return body
    head = body.find(f"<h2>{html.escape(title)}</h2>")
    if head < 0:
        return body
    end = body.find("<h2>", head + 1)
    end = len(body) if end < 0 else end
    return body[:end] + block + "\n" + body[end:]


def _player(row: Row, clips: Clips, names: list[str] | None = None) -> str:
    caption = [f"<code>{html.escape(Path(row.path).name)}</code>", f"speaker {html.escape(row.speaker)}",
               f"given <b>{html.escape(row.given)}</b>"]
    if row.predicted is not None:
        caption.append(f"predicted <b>{html.escape(row.predicted)}</b>")
    if row.probs is not None and names:
        top = np.argsort(row.probs)[::-1][:3]
        caption.append(", ".join(f"{html.escape(names[k])} {row.probs[k]:.2f}" for k in top))
    if row.snr_db is not None:
        caption.append(f"white noise at {row.snr_db:g} dB SNR")
    return (f'<figure class="clip" title="{html.escape(row.path)}"><audio controls preload="none" src="{clips.uri(row)}">'
            "</audio>"
            f'<figcaption>{" · ".join(caption)}</figcaption></figure>')


def _listen(title: str, players: list[str]) -> str:
    return f'<div class="listen"><h3>Listen: {html.escape(title)}</h3>{"".join(players)}</div>' if players else ""


def _pairs(ev, rows: list[Row], clips: Clips, options: HtmlOptions) -> str:
    pairs = (ev.measured.get("confusions") or {}).get("pairs", [])
    names, out = ev.class_names, []
    for p in pairs:
        shown = [r for r in rows if r.given == p["true"] and r.predicted == p["predicted"]][: options.per_pair]
        out.append(_listen(f"{p['true']} taken for {p['predicted']} ({p['count']})",
                           [_player(r, clips, names) for r in shown]))
    return "".join(out)


def _confusion_map(ev, rows: list[Row], clips: Clips, options: HtmlOptions) -> str:
    """The confusion matrix as a table whose cells open their utterances (the first ``per_cell``, with players)."""
    names = ev.class_names
    cells = {(a, b): [r for r in rows if r.given == a and r.predicted == b] for a in names for b in names}
    peak = max((len(v) for v in cells.values()), default=1) or 1
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body, panels = [], []
    for i, a in enumerate(names):
        tds = []
        for j, b in enumerate(names):
            n = len(cells[a, b])
            shade = f"rgba({'40,110,60' if i == j else '200,60,40'},{0.12 + 0.75 * n / peak:.2f})"
            if n:
                tds.append(f'<td class="cell" style="background:{shade}" data-cell="c{i}_{j}" '
                           f'title="{html.escape(a)} predicted as {html.escape(b)}">{n}</td>')
                shown = cells[a, b][: options.per_cell]
                more = f"<p>{n - len(shown)} more in the run's predictions.</p>" if n > len(shown) else ""
                panels.append(f'<div class="panel" id="c{i}_{j}" hidden><h4>{html.escape(a)} predicted as '
                              f'{html.escape(b)}: {n}</h4>{"".join(_player(r, clips, names) for r in shown)}{more}</div>')
            else:
                tds.append("<td>0</td>")
        body.append(f"<tr><th>{html.escape(a)}</th>{''.join(tds)}</tr>")
    return ('<div class="listen"><h3>The confusion matrix as a map</h3><p>Rows: the given class; columns: the '
            'predicted one. Click a cell to list its test utterances.</p><table class="map"><tr><th></th>'
            f"{head}</tr>{''.join(body)}</table>{''.join(panels)}</div>")


def _suspects(ev, context, clips: Clips, options: HtmlOptions) -> str:
    shown = _suspect_rows(ev, context, options)
    players = [_player(r, clips).replace("predicted <b>", "likely <b>") for r in shown]
    return _listen("the suspect labels, most suspect first (training audio)", players)


def _suspect_rows(ev, context, options: HtmlOptions) -> list[Row]:
    """The most suspect training labels (training audio; ``predicted`` holds the likely class)."""
    suspects = (ev.measured.get("label_noise") or {}).get("suspects", [])[: options.suspects]
    index = {u.path: k for k, u in enumerate(context.dm.corpus.utterances)}
    return [Row(index[s["path"]], None, s["path"], str(s["speaker"]), s["given"], s["likely"])
            for s in suspects if s["path"] in index]


def _speakers(ev, rows: list[Row], clips: Clips, options: HtmlOptions) -> str:
    per = (ev.measured.get("speakers") or {}).get("ua", {})
    worst = sorted((s for s in per if per[s]["ua"] == per[s]["ua"]), key=lambda s: per[s]["ua"])[: options.speakers]
    out = []
    for s in worst:
        wrong = [r for r in rows if r.speaker == str(s) and r.given != r.predicted][: options.per_speaker]
        out.append(_listen(f"speaker {s} (UA {per[s]['ua']:.2f}), misclassified",
                           [_player(r, clips, ev.class_names) for r in wrong]))
    return "".join(out)


def _noise(ev, rows: list[Row], clips: Clips, options: HtmlOptions) -> str:
    if not ev.measured.get("noise"):
        return ""
    right = [r for r in rows if r.given == r.predicted][: options.noise_examples]
    pairs = [f'<div class="pair">{_player(r, clips, ev.class_names)}'
             f'{_player(replace(r, predicted=None, probs=None, snr_db=options.snr_db), clips)}'
             "</div>" for r in right]
    return _listen(f"clean and at {options.snr_db:g} dB SNR (white), utterances the model got right", pairs)


def _commands(summary: dict, run_dir: Path | None) -> str:
    """Each cause's advice as a full ``python train.py`` command: the run's overrides plus the advice."""
    try:
        base, note = (run_overrides(run_dir) if run_dir is not None else []), ""
    except FileNotFoundError:  # a run trained in Python, not by train.py: the advice alone
        base, note = [], "<p>The run's own overrides were not found (.hydra/overrides.yaml): add them.</p>"
    items = []
    for c in summary.get("causes", []):
        if not c.get("advice"):
            continue
        line = " ".join(["python train.py", *(_quote(o) for o in followed(base, c["advice"]))])
        items.append(f'<li><b>{html.escape(c.get("cause", c["id"]))}</b><pre><code>{html.escape(line)}</code>'
                     '</pre><button class="copy">copy</button></li>')
    return (f'<div class="listen"><h3>The advice as commands</h3>{note}<ol>{"".join(items)}</ol></div>'
            if items else "")


def _quote(override: str) -> str:
    return f"'{override}'" if re.search(r"[\s\[\]{}(),*?'\"$]", override) else override


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}
img{max-width:100%}code{font-size:.9em}pre{background:#f4f4f4;padding:.5em;overflow-x:auto;white-space:pre-wrap}
.listen{background:#fafaf5;border-left:4px solid #b8a040;padding:.3em 1em;margin:1em 0}
.clip{display:inline-block;margin:.3em 1em .3em 0;vertical-align:top}.clip audio{height:32px;width:260px}
.clip figcaption{font-size:.8em;max-width:300px}.pair{margin:.3em 0}
.map td.cell{cursor:pointer;text-align:center;min-width:2.5em}.map td.cell:hover{outline:2px solid #333}
.panel{border:1px solid #ddd;padding:.3em .8em;margin:.5em 0;background:#fff}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var cell = new URLSearchParams(location.search).get('cell');
  var panel = cell && document.getElementById(cell);
  if (panel && panel.classList.contains('panel')) {  // report.html?cell=c2_3: the map first, that cell open
    document.body.insertBefore(panel.closest('.listen'), document.body.firstChild);
    panel.hidden = false;
  }
  if (location.search.indexOf('selftest') >= 0) selftest();
});
// ?selftest: every figure drawn and every clip decoded (Web Audio's decoder, which answers for every clip, unlike a
// media element that may defer loading), the result in #selftest (read by the tests, headless). No timer: under
// headless Chromium's virtual time a timer can fire before the decoder answers
function selftest() {
  var images = Array.prototype.filter.call(document.images, function (i) { return !(i.complete && i.naturalWidth); });
  var clips = document.querySelectorAll('audio'), left = clips.length, bad = [];
  function done() {
    bad.sort(function (x, y) { return x - y; });
    var out = document.createElement('pre');
    out.id = 'selftest';
    out.textContent = JSON.stringify({images: document.images.length, broken_images: images.length,
                                      clips: clips.length, broken_clips: bad});
    document.body.appendChild(out);
  }
  if (!left) return done();
  var context = new OfflineAudioContext(1, 1, 16000);
  clips.forEach(function (a, k) {
    function answer(ok) { if (!ok) bad.push(k); if (!--left) done(); }
    fetch(a.src).then(function (r) { return r.arrayBuffer(); })
      .then(function (bytes) { return context.decodeAudioData(bytes); })
      .then(function (buffer) { answer(buffer.duration > 0); }, function () { answer(false); });
  });
}
document.addEventListener('click', function (e) {
  var cell = e.target.closest('td.cell');
  if (cell) {
    var panel = document.getElementById(cell.dataset.cell);
    document.querySelectorAll('.panel').forEach(function (p) { if (p !== panel) p.hidden = true; });
    panel.hidden = !panel.hidden;
    if (!panel.hidden) panel.scrollIntoView({block: 'nearest'});
  }
  if (e.target.matches('button.copy')) {
    var text = e.target.previousElementSibling.textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text);
    e.target.textContent = 'copied';
  }
});
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>
<body>
{body}
<script>{script}</script>
</body></html>
"""
