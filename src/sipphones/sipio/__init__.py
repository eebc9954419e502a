"""asyncio side of the SIP engine: transports (UDP, TCP, TLS), RFC 3263 server location, and the
driver that runs the sans-IO registration machine of ``sipphones.sip`` over them."""
