"""Verifies deliveries with the official Standard Webhooks library (PyPI `standardwebhooks`).

Reads a JSON list on stdin, each {"secret", "headers", "body_b64"}; writes a JSON list of
{"verified": bool, "error": str|null, "payload": object|null}, one per delivery.
"""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

results = []
for delivery in json.load(sys.stdin):
    body = base64.b64decode(delivery["body_b64"])
    try:
        payload = Webhook(delivery["secret"]).verify(body, delivery["headers"])
        results.append({"verified": True, "error": None, "payload": payload})
    except WebhookVerificationError as error:
        results.append({"verified": False, "error": str(error), "payload": None})
json.dump(results, sys.stdout)
