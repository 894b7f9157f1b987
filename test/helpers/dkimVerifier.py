"""
Verifies every DKIM-Signature of a message with dkimpy (Debian's python3-dkim), a DKIM
implementation independent of Postern's, fetching keys from the DNS server given.

Usage: dkimVerifier.py --server 127.0.0.1 --port 5353 < message.eml
Prints one JSON object: {"signatures": [{"index", "domain", "selector", "algorithm", "valid", "error"}]}
in the order the signatures appear, top first. Exits 0 whatever the verdicts; non-zero only when
it could not run.
"""

import argparse
import json
import logging
import sys

import dkim
import dns.resolver


class Collect(logging.Handler):
    """Keeps dkimpy's log records: they carry the reason a signature failed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [args.server]
    resolver.port = args.port

    def txt(name, timeout=5):
        # dkimpy asks for b"selector._domainkey.domain."; several strings of one record are joined
        # with nothing between them (RFC 6376 section 3.6.2.2).
        qname = name.decode("ascii") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname, "TXT", lifetime=timeout, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        for record in answer:
            return b"".join(record.strings)
        return None

    message = sys.stdin.buffer.read()
    count = len([1 for name, _ in dkim.DKIM(message).headers if name.lower() == b"dkim-signature"])
    results = []
    for index in range(count):
        collect = Collect()
        logger = logging.getLogger("dkim-%d" % index)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(collect)
        verifier = dkim.DKIM(message, logger=logger, minkey=1024)
        error = None
        try:
            valid = bool(verifier.verify(idx=index, dnsfunc=txt))
        except dkim.DKIMException as e:
            valid = False
            error = str(e)
        if not valid and error is None and collect.lines:
            error = "; ".join(collect.lines)
        sig = verifier.signature_fields or {}
        results.append(
            {
                "index": index,
                "domain": sig.get(b"d", b"").decode("ascii", "replace"),
                "selector": sig.get(b"s", b"").decode("ascii", "replace"),
                "algorithm": sig.get(b"a", b"").decode("ascii", "replace"),
                "valid": valid,
                "error": error,
            }
        )
    print(json.dumps({"signatures": results}))


if __name__ == "__main__":
    main()
