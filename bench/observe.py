"""What observing costs a check-in (issue 30: metrics and request ids add at most 5 %).

    python bench/observe.py --db postgres --rounds 5 --seconds 5

Two uvicorn servers of this checkout on one database: Torreya as it ships, and Torreya
without its observation layer (bench/unobserved.py: no X-Request-ID, no request metrics, no
check-in or ledger counters). wrk posts distinct resident x event pairs to each in turn, the
order swapped each round; each round's ratio and their median are printed, beside the bare
JSON endpoint that shows the generator is not the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import wrk  # noqa: E402
from bench.checkin import free_port, fresh_database, prepare, server_env, start  # noqa: E402


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) the server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--residents", type=int, default=6000)
    parser.add_argument("--rate-cap", type=int, default=10000)
    args = parser.parse_args(argv)

    workdir, db_url = fresh_database(args.db, args.pg_url, "torreya_bench_observe")
    per_round = int(args.rate_cap * max(args.seconds, 1))
    events = -(-(2 * per_round * args.rounds + args.residents) // args.residents)
    tokens, bearers = asyncio.run(prepare(db_url, args.residents, events))
    pairs = [(bearer, {"token": token}) for token in tokens for bearer in bearers]
    warm, pairs = pairs[:args.residents], pairs[args.residents:]

    def requests(name: str, chosen: list) -> Path:
        return wrk.write_requests(workdir / f"{name}.txt", [
            wrk.Request("POST", "/api/v1/checkins", bearer, body) for bearer, body in chosen])

    env = server_env(db_url)
    servers = []
    rounds = []
    cpu: dict[str, list[float]] = {"observed": [], "unobserved": []}  # s per check-in
    try:
        shipped, bare, plain = free_port(), free_port(), free_port()
        servers.append(start("torreya.asgi:app", shipped, env))
        servers.append(start("bench.unobserved:app", plain, env))
        servers.append(start("bench.bare:app", bare, env))
        urls = {"observed": f"http://127.0.0.1:{shipped}/api/v1/checkins",
                "unobserved": f"http://127.0.0.1:{plain}/api/v1/checkins"}
        half = len(warm) // 2
        wrk.run("warm-up", urls["observed"], seconds=2, requests_file=requests("w1", warm[:half]))
        wrk.run("warm-up", urls["unobserved"], seconds=2,
                requests_file=requests("w2", warm[half:]))
        for n in range(args.rounds):
            chosen = pairs[2 * n * per_round:(2 * n + 2) * per_round]
            slices = {"observed": chosen[:per_round], "unobserved": chosen[per_round:]}
            order = ["observed", "unobserved"] if n % 2 == 0 else ["unobserved", "observed"]
            measured = {}
            for name in order:
                pid = servers[0 if name == "observed" else 1].pid
                before = process_cpu(pid)
                measured[name] = wrk.run(f"check-in, {name}", urls[name], seconds=args.seconds,
                                         connections=args.connections,
                                         requests_file=requests(f"{name}{n}", slices[name]))
                cpu[name].append((process_cpu(pid) - before) / max(measured[name].requests, 1))
            cap = wrk.run("bare JSON (generator cap)", f"http://127.0.0.1:{bare}/json",
                          seconds=args.seconds, connections=args.connections)
            rounds.append((measured["observed"], measured["unobserved"], cap))
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    print(f"database: {args.db}; {os.cpu_count()} cores; wrk -t1 -c{args.connections}, "
          f"{args.rounds} rounds of {args.seconds:g} s, distinct resident x event pairs")
    ratios = []
    for n, (observed, unobserved, cap) in enumerate(rounds, start=1):
        print(f" round {n}")
        for f in (observed, unobserved, cap):
            print(f.line())
        ratios.append(observed.rps / unobserved.rps)
        print(f"  observed / unobserved: {ratios[-1]:.3f}")
    us = {name: 1e6 * statistics.median(values) for name, values in cpu.items()}
    print(f"server CPU per check-in, median of {len(ratios)} rounds: observed "
          f"{us['observed']:.0f} µs, unobserved {us['unobserved']:.0f} µs "
          f"({100 * (us['observed'] / us['unobserved'] - 1):+.1f} %)")
    median = statistics.median(ratios)
    print(f"observed / unobserved, median of {len(ratios)} rounds: {median:.3f} "
          f"(cost {100 * (1 - median):.1f} %; target at most 5 %)")
    clean = all(f.non2xx == 0 and f.socket_errors == 0 for r in rounds for f in r)
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
