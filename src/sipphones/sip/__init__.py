"""Sans-IO SIP core: messages, digest, the non-INVITE client transaction and the registration
state machine. Nothing in this package opens a socket, starts a task or reads a clock: bytes and
the current time come in, bytes and timer requests go out (the style of ``h11``).
"""
