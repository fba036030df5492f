-- wrk script: POST /tasks/enqueue with a valid legacy task (scripts/bench).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"requested_by":{"kind":"system","id":"wrk"},"objective":"Benchmark task sent by wrk","operation":"ops","target":{"repo":"bench/repo"}}'
