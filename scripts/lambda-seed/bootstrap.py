"""A minimal Lambda runtime client for the seed functions: `bootstrap.py MODULE`.

Imports `MODULE` (its module-level code is the function's init), then loops as the
Lambda Runtime API asks: GET the next invocation, call `MODULE.lambda_handler(event,
None)`, POST its JSON result (or an error). The API's address is in
`AWS_LAMBDA_RUNTIME_API`, as in Lambda. Only the standard library, so that what is
measured is the function's own libraries (the real Python runtime adds its own start-up,
which is not counted here, in the seeds' favour).
"""
import http.client
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    function = importlib.import_module(sys.argv[1])
    api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    base = "/2018-06-01/runtime/invocation"
    while True:
        api.request("GET", base + "/next")
        reply = api.getresponse()
        request_id = reply.getheader("Lambda-Runtime-Aws-Request-Id")
        event = json.loads(reply.read() or b"null")
        try:
            body, path = json.dumps(function.lambda_handler(event, None)), "/response"
        except Exception as e:  # what the real runtime reports: the error's type and text
            body = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)})
            path = "/error"
        api.request("POST", f"{base}/{request_id}{path}", body, {"Content-Type": "application/json"})
        api.getresponse().read()


if __name__ == "__main__":
    main()
