"""The SAT / DSAT / NEUTRAL cue lexicon: every regex the implicit-feedback miners use, in one
readable place.

Rules run over the *cleaned* turn (see `dissatisfaction.clean_text`: lower-cased, curly quotes
straightened, ShareGPT UI residue such as "Share Prompt" removed, whitespace collapsed), so every
pattern is case-insensitive by construction. Patterns are RE2 (pyarrow.compute), so no
look-arounds: an exception is written as a separate `unless` pattern.

The rule lists (HEAD_RULES, then BODY_*_RULES, FOLLOW_UP_RULE) are ordered by priority; a
turn gets the label of the FIRST rule that matches it. The order encodes four ideas:

1. Where a cue sits matters. A cue at the start of a turn ("thanks!", "no, I meant ...",
   "that's wrong") is the user's reaction to the answer; the same words deep inside a new long
   request are weak evidence. So every lexicon has a *head* rule (the cue starts within the
   first HEAD_CHARS characters, or the pattern is anchored with ^) with high confidence, and
   some have a *body* rule (anywhere) with low confidence that only fires if no head rule did.
2. Short whole-turn forms are strongest ("thank you", "perfect", "continue"): `max_chars`
   limits a rule to short turns.
3. Explicit dissatisfaction beats politeness: "thanks, but that's wrong" is DSAT, so the DSAT
   head rules come before the SAT ones; polite negatives ("no problem, thanks!",
   "no worries") are carved out of the "no ..." rule with `unless`.
4. Context: "no." or "yes" right after the assistant asked a question answers it
   (`not_after_question`), and "continue" / "go on" is NEUTRAL even when phrased as
   "you didn't finish".
Every matched turn's evidence names the rule and quotes the matched text.
"""
from __future__ import annotations

from dataclasses import dataclass

HEAD_CHARS = 80  # a head rule's match must start within this many characters of the turn

# Chat-UI residue ShareGPT users copied along with their message ("Share Prompt",
# Korean "지금 번역하기" = "translate now"); removed before any rule runs.
UI_NOISE = r"(?:share prompt|지금 번역하기|\[?copy(?: code)?\]?)\s*$"
# leading @-mentions in forum comments ("@jon: thanks!") are addressing, not content
MENTION = r"^(?:@[\w.-]+\W*)+"

# --- lexicons (fragments reused by several rules) ---------------------------------------------

THANKS = (r"(?:thanks|thank you|thank u|thankyou|thanx|thnx|thx|ty|tysm|many thanks|cheers|"
          r"much appreciated|(?:i )?(?:really )?appreciate (?:it|that|this|the help|your help))")

ACCEPT = (r"(?:perfect|excellent|awesome|amazing|great|fantastic|wonderful|brilliant|superb|"
          r"nice|cool|sweet|neat|exactly|good job|great job|nice work|nice job|well done|"
          r"good work|bravo|that works|this works|it works|works (?:now|great|perfectly|fine)|"
          r"it worked|that worked|this worked|worked|got it|makes sense|that makes sense|"
          r"love it|i love it|i like it|looks good|lgtm|very good|much better|good|"
          r"that'?s (?:it|right|correct|great|perfect|good|helpful|awesome|exactly|what i (?:wanted|needed))|"
          r"this is (?:great|perfect|helpful|awesome|amazing|good|exactly)|"
          r"yes,? (?:exactly|correct|right|that'?s it)|(?:correct|right|exactly)[.!]|\+1)")

# words that may precede an acceptance word ("wow, that's perfect", "ok sounds good"); an
# arbitrary word may not ("make it cool" is a request)
ACCEPT_PREFIX = (r"(?:(?:ok(?:ay)?|wow|oh|ah|yes|yeah|yep|alright|all right|very|so|really|pretty|super|just|"
                 r"sounds|looks|seems|that'?s|this is|it'?s|it is|that is|this was|that was|you'?re|you are|"
                 r"absolutely|thanks|thank you|hey|haha|lol)\W+){0,3}")

# a short acceptance is void if negated ("not good", "doesn't work")
NEGATION = r"\b(?:not|never|hardly|isn'?t|wasn'?t|doesn'?t|don'?t|didn'?t|no longer)\b"

ACK = r"^\W*(?:ok(?:ay)?|k|alright|all right|sure|yes|yep|yeah|fine|understood|i see|noted)\W*$"

CORRECTION = (
    r"(?:(?:that|this|it|which|you|your (?:answer|code|response|solution|output|calculation|formula|example)|"
    r"the (?:answer|code|output|result|formula|calculation|information|info|date|number|translation|sum|total))"
    r"(?:'?s| is| are|'?re| was| were| seems| seem| looks)"
    r"(?: still| completely| totally| just| all| actually| definitely| clearly| obviously| partially| partly| quite)?"
    r" (?:wrong|incorrect|inaccurate|false|untrue|not (?:right|correct|true|accurate|quite right))\b"
    r"|\b(?:wrong|incorrect) (?:answer|result|output|formula|code|information|info|number|date|calculation|"
    r"again|assumption)\b"
    r"|\bnot (?:quite|exactly) (?:right|correct)\b"
    r"|(?:^|\bno\W+|\bnope\W+|\bsorry\W+|\bactually\W+|\bbut\W+|\boops\W+)"
    r"i (?:meant|said|asked(?: for| you)?|was asking)\b"
    r"|\byou (?:made|have made|'ve made|make) (?:a |an |some |several |many )?(?:mistake|error|typo)s?\b"
    r"|\byou(?:'re| are) (?:wrong|mistaken|confused|incorrect)\b"
    r"|\b(?:there'?s|there is|there are|has|have|contains?) (?:a |an |one |some |still |another |few |several )?"
    r"(?:mistake|typo)s?\b"
    r"|\b(?:a|one|small|minor|another|slight|little) (?:mistake|typo|bug|error)s? in\b"
    r"|\bi (?:disagree|don'?t agree|do not agree)\b"
    r"|\b(?:that|this|it)(?:'?s| is) not (?:it|right|correct|true|accurate)\b)")

COMPLAINT = (
    r"(?:\b(?:doesn'?t|does not|didn'?t|did not|isn'?t|is not|aren'?t|are not|wasn'?t|was not|"
    r"won'?t|will not|still not|not|never)(?: (?:really|even|actually|quite|seem to|seems to|always|fully))?"
    r" (?:work|working|worked|compile|compiling|compiles|help|helpful|helping)\b"
    r"|\bstill (?:get|getting|got|gets|see|seeing|shows?|showing|gives?|giving|returns?|returning|throws?|"
    r"throwing|produces?|producing|the same|not|doesn'?t|does not|no|fails?|failing|broken|wrong|an? error|errors?)\b"
    r"|\bsame (?:error|issue|problem|result|output|mistake|answer)s?\b"
    r"|\bnot what i (?:asked|wanted|meant|need|needed|was looking for|said|requested)\b"
    r"|\b(?:doesn'?t|does not|didn'?t|did not) (?:make (?:any )?sense|answer (?:my|the) question|address|solve|fix)\b"
    r"|\b(?:makes no sense|useless|nonsense|not helpful|unhelpful|you misunderstood|misunderstood (?:me|my|the)|"
    r"you(?:'re| are) not (?:listening|understanding|following)|try again|do it again|redo (?:it|this|that)|"
    r"regenerate(?: (?:the|your|this|that))?(?: answer| response)?)\b"
    r"|\b(?:it|this|that|the code|your code|the script|your script) (?:fails|failed|crashes|crashed)\b)")

# "you didn't / you forgot ..." only counts at the start of a turn: inside a long request it is
# usually narrative ("if you didn't receive any specification, ...").
YOU_DIDNT = (r"^\W*(?:(?:but|and|hmm+|no|well|however|sorry|wait|ok(?:ay)?)\W+){0,2}you (?:still |also )?"
             r"(?:didn'?t|did not|haven'?t|have not|forgot|forget|missed|ignored|skipped|left out|failed to|"
             r"never|misunderstood|keep)\b")

# a pasted error right after an answer = the answer (code) failed
ERROR_REPORT = (
    r"^\W*(?:(?:now|but|and|still|ok(?:ay)?|hmm+|sorry|so|however|then|also)\W+){0,2}"
    r"(?:i(?:'m| am)? |it |this |that |the code |your code |running it )?(?:still )?"
    r"(?:get|getting|got|gets|see|seeing|receive|receiving|gives?(?: me)?|giving(?: me)?|throws?|throwing|"
    r"returns?|returning|shows?|showing|produces?)"
    r"(?: an?| the| this| these| that| following| same| another| new| some)*"
    r" (?:error|errors|exception|exceptions|warning|traceback|error message)\b"
    r"|^\W*(?:error:|traceback \(most recent call last\)|exception in thread|uncaught \w*error)"
    r"|^[\s\S]{0,40}?\b\w*(?:error|exception): ")

# "no" as a reaction, not "no problem" and not "no fossil fuels are allowed ..."
NO_START = (r"^\W*(?:no|nope|nah|not really|not quite)"
            r"(?:\W*$|[,.!:;]|\s+(?:i|you|it|that|this|the|we|not|no|sorry|but|actually)\b)")
NO_POLITE = (r"^\W*(?:no|nope)\W+(?:problem|problemo|worries|need|rush|thanks|thank|doubt|more|further|other|"
             r"prob|sweat|that'?s (?:ok|okay|fine|good|great|perfect|all|alright|it)|"
             r"it'?s (?:ok|okay|fine|good|great|all right|alright)|i (?:don'?t|do not) (?:need|have|want|mind))")

CONTINUE = (r"^\W*(?:(?:please|pls|ok(?:ay)?|now|so|and|yes|then|can you|could you|would you|go ahead and)\W+){0,3}"
            r"(?:continue|cont|keep going|keep writing|go on|carry on|resume)\b")
CONTINUE_SHORT = (r"^\W*(?:(?:please|pls|ok(?:ay)?|now|and|yes|then|can you|could you)\W+){0,3}"
                  r"(?:more|next|proceed|go ahead|finish|complete|and\?|then\?|what else|finished\?|"
                  r"(?:list|give(?: me)?|write|add|show(?: me)?|generate) (?:\d+ |a few |some |a couple(?: of)? )?"
                  r"more|(?:you )?(?:didn'?t|did not) finish|(?:you|it) (?:stopped|got cut off|was cut off|"
                  r"were cut off|were interrupted))(?:\W|$)")

# the assistant's answer ends by asking the user something (checked on its last 200 characters)
ASKED = r"\?(?:\s|$)"
ASKED_TAIL_CHARS = 200

# follow-up: a question, or a reference back to the answer, near the start of the turn
FOLLOW_UP = (r"\?|^\W*(?:and|also|now|then|so|what about|how about|what if|why|how|what|which|where|when|"
             r"who|can you|could you|would you|will you|is it|is there|are there|do you|does it|did you|"
             r"should i)\b|\b(?:it|this|that|these|those|them|above|previous|earlier|"
             r"you (?:mentioned|said|wrote|suggested|gave|listed|provided)|"
             r"your (?:answer|code|response|example|list|suggestion|previous|last))\b")


@dataclass(frozen=True)
class Rule:
    """One cue: a turn whose cleaned text matches `pattern` (and not `unless`, and is at most
    `max_chars` long) gets `label`/`category` with `confidence`. where="head" means the match
    must start within HEAD_CHARS characters; "any" means anywhere; "as_is" uses the pattern's
    own anchors. `not_after_question` rules are skipped when the previous assistant turn ended
    by asking a question (ASKED): then "no." / "yes" answer it rather than judge it."""
    name: str
    label: str
    category: str
    pattern: str
    confidence: float
    where: str = "as_is"
    max_chars: int | None = None
    unless: str | None = None
    not_after_question: bool = False  # "no" / "yes" right after the assistant asked something is an answer

    @property
    def regex(self) -> str:
        """The RE2 pattern actually run, with the matched cue captured as group `m`."""
        if self.where == "head":
            return rf"^[\s\S]{{0,{HEAD_CHARS}}}?(?P<m>{self.pattern})"
        return f"(?P<m>{self.pattern})"


# priority order: the first matching rule labels the turn
HEAD_RULES = [
    Rule("continue", "NEUTRAL", "continue", CONTINUE, 0.9),
    Rule("continue_short", "NEUTRAL", "continue", CONTINUE_SHORT, 0.8, max_chars=60),
    Rule("correction", "DSAT", "correction", CORRECTION, 0.9, where="head"),
    Rule("complaint", "DSAT", "complaint", COMPLAINT, 0.85, where="head"),
    Rule("complaint_you_didnt", "DSAT", "complaint", YOU_DIDNT, 0.75),
    Rule("complaint_error_report", "DSAT", "complaint", ERROR_REPORT, 0.65),
    Rule("gratitude_short", "SAT", "gratitude", rf"^\W*(?:[\w']+\W+){{0,3}}?{THANKS}\b[^?]*$", 0.95, max_chars=60),
    Rule("acceptance_short", "SAT", "acceptance", rf"^\W*{ACCEPT_PREFIX}{ACCEPT}(?:\W|$)[^?]*$", 0.85,
         max_chars=60, unless=rf"{NEGATION}|\b(?:but|except|however|although|though)\b"),
    Rule("acknowledgement", "SAT", "acceptance", ACK, 0.5, max_chars=20, not_after_question=True),
    Rule("no_start", "DSAT", "correction", NO_START, 0.75, unless=NO_POLITE, not_after_question=True),
    Rule("gratitude_head", "SAT", "gratitude", rf"^\W*(?:[\w']+\W+){{0,3}}?{THANKS}\b", 0.7),
    Rule("acceptance_head", "SAT", "acceptance", rf"^\W*{ACCEPT_PREFIX}{ACCEPT}(?:\W|$)", 0.6,
         unless=rf"^\W*(?:[\w']+\W+){{0,2}}{NEGATION}"),
]
# Weaker evidence: the cue sits somewhere inside a longer turn. Order in classify_turns:
# HEAD_RULES, BODY_DSAT_RULES, the rephrase (similarity) rule, BODY_SAT_RULES, FOLLOW_UP_RULE,
# then follow_up / new_topic by word overlap.
# Beyond BODY_MAX_CHARS a turn is mostly pasted material (emails, stories, logs) whose "thank
# you" / "doesn't work" is not addressed to the assistant, so body rules stop there.
BODY_MAX_CHARS = 400
BODY_DSAT_RULES = [
    Rule("correction_body", "DSAT", "correction", CORRECTION, 0.4, where="any", max_chars=BODY_MAX_CHARS),
    Rule("complaint_body", "DSAT", "complaint", COMPLAINT, 0.4, where="any", max_chars=BODY_MAX_CHARS),
]
BODY_SAT_RULES = [
    Rule("gratitude_body", "SAT", "gratitude", rf"\b{THANKS}\b", 0.35, where="any", max_chars=BODY_MAX_CHARS),
]
FOLLOW_UP_RULE = Rule("follow_up_cue", "NEUTRAL", "follow_up", FOLLOW_UP, 0.6, where="head")

# Function words ignored when measuring topic overlap (follow_up vs new_topic): two unrelated
# requests share "a", "the", "please", "can you" and would otherwise look related.
STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with from as into about over than this that these
those it its it's is are was were be been being am do does did doing have has had i me my mine we us our
you your yours he she they them their his her him what which who whom whose when where why how all any
each some no not only own same too very can could would should will shall may might must just also now
here there please pls thanks thank ok okay yes yeah make give write tell show let let's more again one
""".split())

# confidences of the rules that are not regexes
REPHRASE_CONFIDENCE = (0.5, 0.8)     # linear in token_sort similarity from its threshold to 1.0
FOLLOW_UP_SIMILAR_CONFIDENCE = 0.4   # no cue, but shares words with the previous exchange
NEW_TOPIC_CONFIDENCE = 0.5
