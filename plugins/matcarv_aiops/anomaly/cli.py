"""``aiops anomaly score FILE.csv``: score a ``timestamp,value`` series the way the 5-minute job does.

Each point is scored from the points before it only. Prints ``timestamp,value,anomaly_score`` CSV,
the score in [0, 1]. ``--state-in``/``--state-out`` resume from and save the per-series state as JSON,
so a file can be scored in pieces exactly as the job scores a series run after run.
"""

from __future__ import annotations

import csv
import json
import math
import sys


def register(subparsers) -> None:
    from matcarv_aiops.anomaly import DEFAULT_DETECTOR, DETECTORS

    parser = subparsers.add_parser("anomaly", help="causal anomaly scoring of metric series")
    commands = parser.add_subparsers(dest="anomaly_command", required=True)
    score = commands.add_parser(
        "score", help="score a timestamp,value CSV; prints timestamp,value,anomaly_score"
    )
    score.add_argument("file", help="CSV with a header row naming timestamp and value columns ('-': stdin)")
    score.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    score.add_argument("--state-in", help="JSON state to resume the series from")
    score.add_argument("--state-out", help="write the series' state after the last point here (JSON)")
    score.set_defaults(handler=run_score)


def read_series(handle, source: str) -> tuple[list[str], list[str], list[float]]:
    """Timestamps, value texts and values of a ``timestamp,value`` CSV; ValueError naming the bad line."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{source} is empty: expected a header row 'timestamp,value'")
    columns = [name.strip().lower() for name in header]
    if "timestamp" not in columns or "value" not in columns:
        raise ValueError(f"{source} header is {','.join(header)!r}: expected columns 'timestamp' and 'value'")
    t_col, v_col = columns.index("timestamp"), columns.index("value")
    timestamps, texts, values = [], [], []
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"{source} line {line}: {len(row)} fields, the header has {len(header)}")
        timestamp = row[t_col].strip()
        if not timestamp:
            raise ValueError(f"{source} line {line}: empty timestamp")
        try:
            value = float(row[v_col])
        except ValueError:
            raise ValueError(f"{source} line {line}: value {row[v_col]!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{source} line {line}: value {row[v_col]!r} is not finite")
        timestamps.append(timestamp)
        texts.append(row[v_col].strip())
        values.append(value)
    if not values:
        raise ValueError(f"{source} has a header but no data rows")
    return timestamps, texts, values


def run_score(args) -> int:
    from matcarv_aiops.anomaly import StateError, make_detector
    from matcarv_aiops.cli import UsageError

    try:
        if args.file == "-":
            timestamps, texts, values = read_series(sys.stdin, "stdin")
        else:
            with open(args.file, newline="", encoding="utf-8") as handle:
                timestamps, texts, values = read_series(handle, args.file)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    except (ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise UsageError(str(exc)) from None

    state = None
    if args.state_in:
        try:
            with open(args.state_in, encoding="utf-8") as handle:
                state = json.load(handle)
        except OSError as exc:
            raise UsageError(f"cannot read {args.state_in}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UsageError(f"{args.state_in} is not JSON: {exc}") from None

    try:
        scores, new_state = make_detector(args.detector).score_series(values, state)
    except StateError as exc:
        raise UsageError(f"{args.state_in}: {exc}") from None

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["timestamp", "value", "anomaly_score"])
    for timestamp, text, score in zip(timestamps, texts, scores, strict=True):
        out.writerow([timestamp, text, f"{score:.6f}"])
    if args.state_out:
        with open(args.state_out, "w", encoding="utf-8") as handle:
            json.dump(new_state.to_dict(), handle)
    return 0
