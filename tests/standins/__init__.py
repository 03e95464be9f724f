"""Stand-ins for services the tests cannot reach for real (metadata servers, TFTP, HTTP faults)."""
