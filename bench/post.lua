-- wrk: POST the AdmissionReview in $BODY to $URL_PATH, keep-alive.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("URL_PATH")
wrk.headers["Content-Type"] = "application/json"
