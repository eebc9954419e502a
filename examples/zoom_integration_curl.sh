#!/usr/bin/env bash
# Testing a Zoom integration with curl: a retry driven by a fault rule, a verification through the
# journal and a token expiry through the clock (as examples/test_zoom_integration.py does in pytest).
# Needs a running emulator, e.g.:  SIPPHONES_ADMIN_TOKEN=change-me-0123456789 sipphones serve --emulator
set -euo pipefail
BASE=${SIPPHONES_URL:-http://127.0.0.1:8000}
ADMIN="Authorization: Bearer ${SIPPHONES_ADMIN_TOKEN:?set SIPPHONES_ADMIN_TOKEN to the emulator\'s operator token}"
JSON='Content-Type: application/json'
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

# A fresh account with the user alice@example.com, a Server-to-Server app and an access token.
ACCOUNT=$(curl -sf -X POST "$BASE/_sipphones/v1/accounts" -H "$ADMIN" -H "$JSON" -d '{"users": ["alice@example.com"]}')
ACCOUNT_ID=$(echo "$ACCOUNT" | field account_id)
TOKEN=$(echo "$ACCOUNT" | field access_token)

# 1. A fault rule: the next two creates of this account get Zoom's 429 with "Retry-After: 1".
curl -sf -X POST "$BASE/_sipphones/v1/faults" -H "$ADMIN" -H "$JSON" -o /dev/null -d '{"method": "POST",
  "path": "/v2/sip_phones/phones", "account_id": "'"$ACCOUNT_ID"'", "status": 429, "retry_after": 1, "times": 2}'
PHONE='{"user_email": "alice@example.com", "user_name": "1001", "authorization_name": "1001", "password": "s3cret",
  "domain": "sip.example.com", "server": {"register_server": "192.0.2.10", "proxy_server": "192.0.2.10",
  "transport_protocol": "UDP"}}'
for attempt in 1 2 3; do   # the retry loop under test
  STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/v2/sip_phones/phones" \
    -H "Authorization: Bearer $TOKEN" -H "$JSON" -d "$PHONE")
  echo "create, attempt $attempt: HTTP $STATUS"
  [ "$STATUS" = 201 ] && break
  sleep 1
done
[ "$STATUS" = 201 ]

# 2. The journal: exactly three creates for alice were sent (two refused, one made).
COUNT=$(curl -sf -X POST "$BASE/_sipphones/v1/journal/count" -H "$ADMIN" -H "$JSON" -d '{"method": "POST",
  "path": "/v2/sip_phones/phones", "account_id": "'"$ACCOUNT_ID"'", "body": {"user_email": "alice@example.com"}}' \
  | field count)
echo "creates recorded: $COUNT"
[ "$COUNT" = 3 ]

# 3. The clock: an hour later the access token has expired (401, code 124).
curl -sf -X POST "$BASE/_sipphones/v1/clock/advance" -H "$ADMIN" -H "$JSON" -d '{"seconds": 3600}' -o /dev/null
ANSWER=$(curl -s -H "Authorization: Bearer $TOKEN" "$BASE/v2/sip_phones/phones")
echo "an hour later: $ANSWER"
[ "$(echo "$ANSWER" | field code)" = 124 ]

# Clean up: the clock back, the account gone.
curl -sf -X POST "$BASE/_sipphones/v1/clock/reset" -H "$ADMIN" -o /dev/null
curl -sf -X POST "$BASE/_sipphones/v1/reset" -H "$ADMIN" -H "$JSON" -d '{"account_id": "'"$ACCOUNT_ID"'"}' -o /dev/null
echo "all checks passed"
