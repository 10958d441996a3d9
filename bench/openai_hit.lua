-- wrk script: POST the same OpenAI images body (cache hits after the first request)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY") or '{"prompt": "a lighthouse at dusk", "size": "64x64", "seed": 7}'
