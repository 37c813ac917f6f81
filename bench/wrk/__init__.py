"""Drive load with wrk (Debian's `wrk`, a native generator) and read its figures.

Every benchmark also drives a bare JSON endpoint with the same generator in the same run, so
a reader can see the generator is far faster than what it measures and is not the cap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


class WrkMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (f"  {self.name:<28} {self.rps:9.0f} req/s   p50 {self.p50_ms:7.1f} ms   "
                f"p99 {self.p99_ms:7.1f} ms   non-2xx {self.non2xx}   "
                f"socket errors {self.socket_errors}")


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed (apt-get install wrk)")
    return path


def run(name: str, url: str, *, seconds: float, connections: int = 64, threads: int = 1,
        requests_file: Path | None = None) -> Figures:
    """One wrk run against `url` (its host; with `requests_file`, each request is the next
    line of that file, see `write_requests`; without, GET `url`)."""
    if requests_file is None:
        lines = invoke(url, HERE / "get.lua", seconds=seconds, connections=connections,
                       threads=threads)
    else:
        lines = invoke(url, HERE / "rotate.lua", seconds=seconds, connections=connections,
                       threads=threads, env={"TORREYA_BENCH_REQUESTS": str(requests_file)})
    return figures(name, lines)


def invoke(url: str, script: Path, *, seconds: float, connections: int, threads: int = 1,
           env: dict[str, str] | None = None) -> dict[str, dict]:
    """Run wrk with `script` and return the machine-readable lines it printed, by name
    ("WRK_JSON {...}" → {"WRK_JSON": {...}})."""
    command = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), url]
    result = subprocess.run(command, capture_output=True, text=True, env={
        **os.environ, "TORREYA_BENCH_DONE": str(HERE / "done.lua"), **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n"
                           f"{result.stderr}")
    lines = {}
    for line in result.stdout.splitlines():
        tag, _, data = line.partition(" ")
        if tag.startswith("WRK_"):
            lines[tag] = json.loads(data)
    if "WRK_JSON" not in lines:
        raise RuntimeError(f"wrk printed no figures:\n{result.stdout}\n{result.stderr}")
    return lines


def figures(name: str, lines: dict[str, dict]) -> Figures:
    data = lines["WRK_JSON"]
    return Figures(name, data["requests"], data["duration_us"] / 1e6, data["non2xx"],
                   data["connect"] + data["read"] + data["write"] + data["timeout"],
                   data["p50_ms"], data["p99_ms"])


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    bearer: str = ""
    body: dict | None = None


def write_requests(path: Path, requests: list[Request]) -> Path:
    """The file rotate.lua reads: one request a line."""
    with path.open("w", encoding="utf-8") as out:
        for r in requests:
            body = json.dumps(r.body, ensure_ascii=False) if r.body is not None else ""
            out.write(f"{r.method}\t{r.path}\t{r.bearer}\t{body}\n")
    return path
