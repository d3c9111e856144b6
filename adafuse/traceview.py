"""Reading a decode's trace: each round in words and as a small table.

    from adafuse.traceview import round_line, round_view, render_round
    print(round_line(out.trace[0].to_dict(), ["smollm2", "gemma3"]))

Works on trace.jsonl rows and on `Round.to_dict()` alike (the same fields), so the line that
prompt mode prints and `python -m adafuse.show` read a round the same way. No torch here:
`adafuse.show` starts in a fraction of a second.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Optional

WIDTH = 100  # the terminal width the tables fit


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def short_names(names: list[str]) -> list[str]:
    """Labels for table columns: "smollm2-135m-instruct" -> "smollm2", a folder -> its name;
    the whole name where the short ones would clash, m0, m1, ... where even those do."""
    base = [Path(str(n)).name or str(n) for n in names]
    for labels in ([b.split("-")[0] for b in base], base):
        if all(labels) and len(set(labels)) == len(labels):
            return labels
    return [f"m{i}" for i in range(len(names))]


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _words(text: str) -> int:
    return len(text.split())  # as adafuse.decoding.text.word_count counts them


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def model_action(row: dict, m: int, gated: bool = True) -> str:
    """What model `m` did this round, in words: explored (how many branches), confident (how
    many words its span holds), proposed its top tokens (union_topk), or its whole answer.
    `gated=False` (fixed_span: every model proposes k words, no margin gate) says "span"."""
    mine = [p for p in row.get("proposals") or [] if m in (p.get("proposers") or [])]
    explored = (row.get("explored") or [])[m] if m < len(row.get("explored") or []) else False
    kinds = {p.get("kind") for p in mine}
    if explored:
        return f"explored {len(mine)}"
    if kinds == {"answer"}:
        return "its whole answer"  # rerank
    if kinds == {"token"}:
        return f"top {len(mine)} tokens"
    if len(mine) == 1:
        words = plural(_words(mine[0].get("text") or ""), "word")
        return f"confident, {words}" if gated else f"span of {words}"
    return plural(len(mine), "proposal")


def _margins(row: dict, m: int) -> list[float]:
    margins = row.get("margins") or []
    return [v for v in (margins[m] if m < len(margins) else []) if v is not None]


def _span_text(proposal: dict) -> str:
    end = f" [{proposal['terminal']}]" if proposal.get("terminal") else ""
    return repr(proposal.get("text") or "") + end


def round_view(row: dict, names: list[str], gated: bool = True) -> dict[str, Any]:
    """One round as plain data: every model's margins and decision, every proposal with its
    proposers by name, every model's NLL and the ensemble score, best score first."""
    labels = short_names(names)
    proposals = row.get("proposals") or []
    winner = row.get("winner")
    shown = []
    for k, p in enumerate(proposals):
        nll = p.get("nll") or []
        shown.append({
            "number": k, "text": p.get("text"), "terminal": p.get("terminal"), "kind": p.get("kind"),
            "proposers": [labels[i] for i in p.get("proposers") or [] if i < len(labels)],
            "nll": {labels[i]: v for i, v in enumerate(nll) if i < len(labels)},
            "score": p.get("score"), "winner": k == winner,
        })
    shown.sort(key=lambda p: (p["score"] is None, p["score"] if p["score"] is not None else 0.0))
    return {
        "round": row.get("round", row.get("index")),
        "models": [{"name": names[m], "label": labels[m], "margins": _margins(row, m),
                    "explored": bool((row.get("explored") or [False] * len(names))[m]),
                    "action": model_action(row, m, gated)} for m in range(len(names))],
        "proposals": shown,
        "winner": winner,
        "near_tie": bool(row.get("near_tie")),
        "boundary_merge": [labels[i] for i in row.get("boundary_merge") or [] if i < len(labels)],
    }


def round_line(row: dict, names: list[str], gated: bool = True) -> str:
    """The round in one line of words, e.g. "round  0: smollm2 explored 3 (Δ 0.04), gemma3
    explored 3 (Δ 0.01); 6 proposals; winner ' Henry' from gemma3 (score 2.452)"."""
    view = round_view(row, names, gated)
    acts = []
    for m in view["models"]:
        delta = f" (Δ {m['margins'][0]:.2f})" if m["margins"] else ""
        acts.append(f"{m['label']} {m['action']}{delta}")
    line = f"round {view['round']:>2}: {', '.join(acts)}; {plural(len(view['proposals']), 'proposal')}"
    win = next((p for p in view["proposals"] if p["winner"]), None)
    if win is not None:
        score = f" (score {win['score']:.3f})" if win["score"] is not None else ""
        line += f"; winner {_span_text(win)} from {'+'.join(win['proposers']) or '?'}{score}"
    if view["near_tie"]:
        line += "; near tie"
    if view["boundary_merge"]:
        line += f"; boundary merge in {', '.join(view['boundary_merge'])}"
    return line


def render_round(view: dict, width: int = WIDTH) -> list[str]:
    """The round as a small table: models (margins, decision), then the proposals."""
    labels = [m["label"] for m in view["models"]]
    win = next((p for p in view["proposals"] if p["winner"]), None)
    head = f"round {view['round']} · {plural(len(view['proposals']), 'proposal')}"
    if win is not None:
        head += f" · winner {clip(_span_text(win), 40)} from {'+'.join(win['proposers'])}"
    lines = [head]
    name_w = max([5] + [len(x) for x in labels])
    deltas = [clip(" ".join(f"{v:.3f}" for v in m["margins"]) or "–", 48) for m in view["models"]]
    delta_w = max(len(d) for d in deltas) if deltas else 1
    for m, delta in zip(view["models"], deltas):
        lines.append(f"  {m['label']:<{name_w}}  Δ {delta:<{delta_w}}  {m['action']}")
    cols = [max(7, len(x)) for x in labels]
    by_w = min(max([2] + [len("+".join(p["proposers"])) for p in view["proposals"]]), 18)
    fixed = 2 + 3 + 2 + by_w + 2 + 8 + sum(c + 1 for c in cols) + 8
    text_w = max(12, min(36, width - fixed))
    lines.append(f"  {'':1} {'#':>2} {'proposal':<{text_w}} {'by':<{by_w}} {'kind':<8}"
                 + "".join(f" {x:>{c}}" for x, c in zip(labels, cols)) + f" {'score':>7}")
    for p in view["proposals"]:
        mark = "*" if p["winner"] else " "
        nll = "".join(f" {_fmt(p['nll'].get(x)):>{c}}" for x, c in zip(labels, cols))
        lines.append(f"  {mark} {p['number']:>2} {clip(_span_text(p), text_w):<{text_w}} "
                     f"{clip('+'.join(p['proposers']), by_w):<{by_w}} {clip(p['kind'] or '', 8):<8}"
                     f"{nll} {_fmt(p['score']):>7}")
    if view["near_tie"]:
        lines.append("  ! near tie: the two best ensemble scores differ by less than 1e-4 nats")
    if view["boundary_merge"]:
        lines.append(clip(f"  ! boundary merge in {', '.join(view['boundary_merge'])}: re-tokenising "
                          "prompt + response changed committed tokens", width))
    return lines


def wrapped(label: str, text: str, width: int = WIDTH, max_lines: int = 8) -> list[str]:
    """`label` then `text` wrapped to `width` (a newline shown as ⏎), cut after `max_lines`."""
    indent = " " * 10
    lines = textwrap.wrap(text.replace("\n", "⏎ "), width - len(indent)) or [""]
    if len(lines) > max_lines:
        rest = sum(len(ln) for ln in lines[max_lines:])
        lines = lines[:max_lines] + [f"… ({rest} more characters)"]
    return [f"{label:<10}{lines[0]}"] + [indent + ln for ln in lines[1:]]
