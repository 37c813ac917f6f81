-- wrk script for a plain GET: only the figures line at the end.
done = dofile(os.getenv("TORREYA_BENCH_DONE"))
