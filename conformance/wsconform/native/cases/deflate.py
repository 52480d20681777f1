"""Categories 12 and 13, permessage-deflate: 1,000 compressed messages echoed, 216 cases.

12.x: five data sets (the fuzzer's order) x 18 size/fragmentation profiles, each offering
permessage-deflate with no requests of the server. 13.x: the JSON data set x the same 18
profiles, for each of seven offer sets (what the fuzzer asks of the server: no context
takeover, a window of 9 or 15 bits, or nothing; 13.7 offers three at once, best first).
Every case closes with 1000 from our side, cleanly, as the fuzzer expects.
"""

from __future__ import annotations

from wsconform.native.casedef import CaseSpec, EchoStream, fuzzer_closes
from wsconform.native.deflate import Offer
from wsconform.native.testdata import DATA_SETS
from wsconform.native.verdict import Rule

COUNT = 1000

# (payload length, time limit in seconds, auto-fragment size), sub-cases 1..18.
PROFILES = (
    (16, 60, 0),
    (64, 60, 0),
    (256, 120, 0),
    (1024, 240, 0),
    (4096, 480, 0),
    (8192, 480, 0),
    (16384, 480, 0),
    (32768, 480, 0),
    (65536, 480, 0),
    (131072, 480, 0),
    (8192, 480, 256),
    (16384, 480, 256),
    (32768, 480, 256),
    (65536, 480, 256),
    (131072, 480, 256),
    (131072, 480, 1024),
    (131072, 480, 4096),
    (131072, 480, 32768),
)

_NO_TAKEOVER = Offer(request_no_context_takeover=True)
# 13.1 .. 13.7: the offers of each sub-category.
OFFER_SETS: tuple[tuple[Offer, ...], ...] = (
    (Offer(),),
    (_NO_TAKEOVER,),
    (Offer(request_max_window_bits=9),),
    (Offer(request_max_window_bits=15),),
    (Offer(True, 9),),
    (Offer(True, 15),),
    (Offer(True, 9), _NO_TAKEOVER, Offer()),
)


def _case(case_id: str, data: str, offers: tuple[Offer, ...], profile: int) -> CaseSpec:
    length, seconds, fragment = PROFILES[profile]
    return CaseSpec(
        case_id,
        (EchoStream(data, length, COUNT, fragment, seconds),),
        {},
        fuzzer_closes(),
        rule=Rule.OWN,
        offers=offers,
    )


CASES = tuple(
    _case(f"12.{s + 1}.{p + 1}", data_set.name, (Offer(),), p)
    for s, data_set in enumerate(DATA_SETS)
    for p in range(len(PROFILES))
) + tuple(
    _case(f"13.{s + 1}.{p + 1}", "json_data1", offers, p)
    for s, offers in enumerate(OFFER_SETS)
    for p in range(len(PROFILES))
)
