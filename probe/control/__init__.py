"""The outside control (test helper): OONI's web-connectivity test-helper protocol.

``model`` is the wire format (shared by the server and the client), ``server`` the helper a team runs
outside the censored network, ``client`` what the probe uses to ask one. See docs/helper.md.
"""
