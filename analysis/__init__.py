"""reachprobe analysis: results -> episodes, unblocking windows, reports."""
