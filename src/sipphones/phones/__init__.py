"""The SIP phone domain: the record Zoom calls a "SIP phone", its rules and its service."""
