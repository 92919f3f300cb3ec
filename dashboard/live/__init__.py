"""Live alert feed: Server-Sent Events at `GET /api/v1/alerts/stream`.

One `AlertStream` (`feed`) per process feeds every open stream:

- `listener`: one dedicated database connection does `LISTEN alerts` (the `alerts_notify`
  trigger sends the id of every inserted or updated alert); each notified row is fetched once,
  through the pool, and fanned out as an `alert` event to the subscribers whose scope admits
  it; `LISTEN sessions` ends a revoked session's streams at once;
- `bus`: one paho-mqtt client subscribes to the internal alert bus (`alerts.bus`) and relays
  each `AlertEvent` as a `pending` event, so a new alert reaches the screens even before, or
  without, the database; the same client follows the retained part states
  (`gateway.presence`: pipeline, jobs), relayed as `parts` events, so the duty screen says
  which parts are down and since when;
- `hub`: every subscriber has a bounded queue: a client that cannot keep up has its stream
  closed (it reconnects and reloads) and never slows anyone else down; streams are capped per
  account and per client address;
- `viewer` and `scopes`: what each subscriber may see, kept current as accounts change and
  sessions expire;
- `sse` (framing), `response` (the raw ASGI response), `routes` (the route), `settings`.

Authentication is the ordinary `Authorization: Bearer` header: the pages read the stream with
`fetch()`, so no token ever appears in a URL or an access log. Protocol: docs/alerts.md.
"""
