#!/usr/bin/env python3
"""Draw the side-by-side benchmark results as one PNG.

Reads the text printed by ../shared/bench/compare.py (the table rows
"target conns req/s p50 ms p99 ms non-2xx socket-errors" and the
"peak RSS (MiB): ..." line; everything else is ignored) and draws two panels:
throughput (req/s) and p99 latency (ms) against the number of connections, one
line per target.  The footnote gives the peak RSS, this machine's cores and CPU
model, and the date of the results file, so run it where the benchmark ran.

  bench/chart.py RESULTS.txt OUT.png [--title TEXT]

Needs matplotlib (Debian: apt-get install python3-matplotlib, then run it with
/usr/bin/python3 if another python3 comes first on PATH).  bench/chart.sh runs
the benchmark and this script together.
"""
import argparse
import datetime
import os
import re
import sys

try:
    import matplotlib
except ImportError:
    sys.exit(f"chart.py: {sys.executable} has no matplotlib; apt-get install python3-matplotlib "
             "and run it with /usr/bin/python3")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# target -> (legend label, colour, line style), in legend order
STYLE = {
    "server": ("hci-admission", "tab:blue", "-"),
    "go": ("Go net/http", "tab:green", "-"),
    "node": ("Node.js https", "tab:orange", "-"),
    "limit": ("nginx fixed answer (TLS+HTTP limit)", "tab:gray", "--"),
}
ROW = re.compile(r"^\s*([A-Za-z][\w-]*)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*(.*?)\s*$")


def parse(text):
    """Returns ({target: {conns: (rps, p50, p99, non2xx, socket_errors)}}, rss line or None)."""
    rows, rss = {}, None
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            name, conns = m.group(1), int(m.group(2))
            rps, p50, p99 = (float(m.group(i)) for i in (3, 4, 5))
            rows.setdefault(name, {})[conns] = (rps, p50, p99, int(m.group(6)), m.group(7))
        elif re.match(r"\s*\w+ RSS \(MiB\):", line):
            rss = line.split(":", 1)[1].strip()
    return rows, rss


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores, {model}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="text output of compare.py")
    ap.add_argument("out", help="PNG to write")
    ap.add_argument("--title", default="HTTPS admission webhook throughput and p99 latency "
                                        "(wrk, keep-alive, POST AdmissionReview)")
    a = ap.parse_args()

    with open(a.results) as f:
        rows, rss = parse(f.read())
    if not rows:
        sys.exit(f"{a.results}: no result rows found (expected compare.py output: "
                 "'target conns req/s p50 p99 non-2xx ...' lines)")

    names = [n for n in STYLE if n in rows] + sorted(n for n in rows if n not in STYLE)
    all_conns = sorted({c for n in names for c in rows[n]})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    problems = []
    for name in names:
        label, colour, ls = STYLE.get(name, (name, None, "-"))
        conns = sorted(rows[name])
        rps = [rows[name][c][0] for c in conns]
        p99 = [max(rows[name][c][2], 0.001) for c in conns]  # log scale cannot show 0
        kw = dict(label=label, color=colour, linestyle=ls, marker="o", markersize=5)
        left.plot(conns, rps, **kw)
        right.plot(conns, p99, **kw)
        for c in conns:
            bad, sock = rows[name][c][3], rows[name][c][4]
            if bad or sock:
                problems.append(f"{label} c{c}: " + ", ".join(
                    filter(None, [f"{bad} non-2xx" if bad else "", sock])))

    all_p99 = [max(v[2], 0.001) for n in names for v in rows[n].values()]
    for ax, ylabel in ((left, "requests/s (median of rounds)"), (right, "p99 latency, ms (median of rounds)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_conns)
        ax.set_xticklabels([str(c) for c in all_conns])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if len(all_conns) == 1:
            ax.set_xlim(all_conns[0] / 2, all_conns[0] * 2)
        ax.set_xlabel("concurrent keep-alive connections")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    left.set_title("Throughput (higher is better)", fontsize=10)
    right.set_title("p99 latency (lower is better)", fontsize=10)
    left.set_ylim(bottom=0)
    left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if max(all_p99) / min(all_p99) > 20:
        right.set_yscale("log")
        right.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1, 2, 5)))
        right.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        right.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        right.set_ylim(bottom=0)

    if rss:
        for name, (label, _, _) in STYLE.items():
            rss = re.sub(rf"\b{name}=", f"{label.split(' (')[0]} ", rss)
    day = datetime.date.fromtimestamp(os.path.getmtime(a.results)).isoformat()
    notes = [" · ".join(filter(None, [f"peak RSS (MiB): {rss}" if rss else "", machine(), day]))]
    if problems:
        notes.append("errors: " + "; ".join(problems))
        print("warning: " + "; ".join(problems), file=sys.stderr)
    fig.suptitle(a.title, fontsize=12)
    fig.text(0.5, 0.01, "\n".join(notes), ha="center", va="bottom", fontsize=8, color="dimgray")
    legend_y = 0.015 + 0.03 * len(notes)
    fig.legend(*left.get_legend_handles_labels(), loc="lower center", bbox_to_anchor=(0.5, legend_y),
               ncol=len(names), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, legend_y + 0.06, 1, 1))
    fig.savefig(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
