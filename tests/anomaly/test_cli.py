"""``aiops anomaly score``: CSV in, timestamp,value,anomaly_score out; bad input exits 2."""

from __future__ import annotations

import csv
import io
import math

import pytest

from matcarv_aiops.cli import main


def write_series(path, n=1200):
    rows = ["timestamp,value"]
    for i in range(n):
        value = 10 + math.sin(i / 10) + (50 if i == 1100 else 0)
        rows.append(f"2024-01-{1 + i // 288:02d} {i // 12 % 24:02d}:{i % 12 * 5:02d}:00,{value:.3f}")
    path.write_text("\n".join(rows) + "\n")
    return rows[1:]


def parse(out):
    return list(csv.reader(io.StringIO(out)))


def test_scores_a_csv(tmp_path, capsys):
    source = write_series(tmp_path / "cpu.csv")
    assert main(["anomaly", "score", str(tmp_path / "cpu.csv")]) == 0
    rows = parse(capsys.readouterr().out)
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert [f"{t},{v}" for t, v, _ in rows[1:]] == source
    scores = [float(s) for _, _, s in rows[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(len(scores)), key=scores.__getitem__) == 1100


def test_state_files_let_a_series_be_scored_in_pieces(tmp_path, capsys):
    source = write_series(tmp_path / "all.csv")
    (tmp_path / "day1.csv").write_text("timestamp,value\n" + "\n".join(source[:900]) + "\n")
    (tmp_path / "day2.csv").write_text("timestamp,value\n" + "\n".join(source[900:]) + "\n")
    main(["anomaly", "score", str(tmp_path / "all.csv")])
    whole = parse(capsys.readouterr().out)[1:]
    state = tmp_path / "state.json"
    main(["anomaly", "score", str(tmp_path / "day1.csv"), "--state-out", str(state)])
    main(["anomaly", "score", str(tmp_path / "day2.csv"), "--state-in", str(state)])
    out = capsys.readouterr().out
    pieces = [row for row in parse(out) if row != ["timestamp", "value", "anomaly_score"]]
    assert pieces == whole


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("time,metric\n1,2\n", "expected columns 'timestamp' and 'value'"),
        ("timestamp,value\n", "no data rows"),
        ("timestamp,value\n2024-01-01,1\n2024-01-02,abc\n", "line 3: value 'abc' is not a number"),
        ("timestamp,value\n2024-01-01,1\n2024-01-02,inf\n", "line 3: value 'inf' is not finite"),
        ("timestamp,value\n2024-01-01,1,7\n", "line 2: 3 fields, the header has 2"),
        ("timestamp,value\n,1\n", "line 2: empty timestamp"),
    ],
)
def test_bad_csv_is_one_line_on_stderr_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["anomaly", "score", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_missing_file_and_bad_state(tmp_path, capsys):
    assert main(["anomaly", "score", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    write_series(tmp_path / "cpu.csv", 20)
    (tmp_path / "state.json").write_text(
        '{"detector": "windowed_gaussian", "version": 1, "buffer": [], "mean": 0.0, "m2": 0.0}'
    )
    resume = ["anomaly", "score", str(tmp_path / "cpu.csv"), "--state-in", str(tmp_path / "state.json")]
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not matcarv" in err
    (tmp_path / "state.json").write_text("{nope")
    assert main(resume) == 2
    assert "is not JSON" in capsys.readouterr().err
