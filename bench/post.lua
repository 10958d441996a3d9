-- wrk script: POST the same generation body (cache hits after the first)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY") or '{"prompt": "a lighthouse at dusk", "seed": 7, "size": "64x64"}'
