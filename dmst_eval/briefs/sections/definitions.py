"""Definitions of the terms a reader of the brief meets, in plain words."""
from __future__ import annotations

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section

TITLE = "Definitions"

#: (term, definition). Every term the brief uses without explaining it.
_TERMS = [
    ("Accepted report", "A hotline (Careline) report the agency accepted for a child-protection "
     "response: an investigation or assessment."),
    ("AWOL (absent without leave)", "A child in out-of-home care who is missing from the "
     "placement without permission, for any length of time. An episode \"began during AWOL\" "
     "when the exploitation started while the child was away from the placement."),
    ("Baseline", "The years the scorecard's forecast is built from. By default they are the "
     "brief's comparison period."),
    ("Comparison period", "The years the reporting period is compared with (by default the "
     "same number of years just before it)."),
    ("Confidence interval (95% CI)", "The range of values the data are consistent with; the "
     "true value lies inside such intervals 95 times in 100."),
    ("Confirmed", "The agency's finding, after its investigation, that a child was a victim "
     "of sex trafficking. It is a child-welfare finding, not a criminal conviction, and a "
     "report that was not confirmed does not show that the child was not trafficked."),
    ("Confirmed victim", "A child with at least one confirmed episode, counted once in a "
     "period by the date the agency identified the episode."),
    ("Congregate care", "Group living settings run by staff rather than families: group "
     "homes, residential treatment centres and shelters."),
    ("Cumulative incidence (Aalen–Johansen)", "The share of children who had an event (such "
     "as a second confirmed episode) within a given time, estimated so that children followed "
     "for a shorter time count correctly and aging out at 18 is an outcome of its own (a "
     "child who aged out can no longer have a repeat episode in child welfare)."),
    ("DMST (domestic minor sex trafficking)", "The commercial sexual exploitation of a child "
     "who is a citizen or lawful resident of the United States; any commercial sex act with "
     "a person under 18 is trafficking, whether or not force was used."),
    ("Empirical-Bayes smoothed rate", "A town's rate pulled towards the overall rate, the "
     "more so the fewer children the town has, so that one or two cases in a small town do "
     "not make it look like a hotspot."),
    ("Episode", "One period of exploitation that came to the agency's attention, from when "
     "it began (as far as known) to when the agency identified it."),
    ("Guardian perpetrator", "A parent, guardian or other person entrusted with the child's "
     "care named as the person responsible. Reports without one can still be accepted."),
    ("Hotline report (Careline)", "A call or referral to the agency's Careline alleging that "
     "a child is being trafficked."),
    ("MDT (Multidisciplinary Team)", "A team of child-welfare, police, prosecution, medical "
     "and advocacy staff that reviews trafficking reports together and coordinates the first "
     "response."),
    ("Hotspot", "A town or group of towns with more confirmed episodes than its population "
     "would lead one to expect."),
    ("Interrupted time series", "A comparison of a monthly series before and after a change "
     "(a law or a program start) that allows for the trend already under way."),
    ("Kaplan–Meier estimate", "The share of children who had an event (such as a new "
     "episode) by each point in time, counting correctly the children followed for a shorter "
     "time."),
    ("Odds ratio", "How much a factor multiplies the odds of being identified as a victim: "
     "above 1 more likely, below 1 less likely, 1 no difference. An association, not a "
     "cause."),
    ("Polarity", "Whether a higher value of a measure is better (↑) or worse (↓)."),
    ("Prediction interval (95% PI)", "The range the scorecard expected a measure to fall in "
     "if nothing had changed since the baseline (\"the curve\")."),
    ("Rank interval", "The range of ranks a town could plausibly hold among all towns, given "
     "the uncertainty of its rate."),
    ("Rate ratio", "One rate divided by another: 1.3 means 30% higher."),
    ("Re-victimization", "A new confirmed episode that began after the child was identified; "
     "the scorecard counts one within 12 months."),
    ("Repeat victim", "A child with two or more confirmed episodes."),
    ("Restore & Recovery services", "The services offered to victims and survivors: My Life "
     "My Choice groups, mentors, specialised foster homes, emergency beds, medical "
     "assessments and clinical consultation."),
    ("Results-Based Accountability (RBA)", "The framework the agency uses to track its "
     "strategies with three questions: How much did we do? How well did we do it? Is anyone "
     "better off?"),
    ("Suppressed", "Hidden to protect children's privacy: small counts are shown as "
     "\"<5\" (or \"<10\" in public briefs) and numbers that would reveal them are hidden too."),
    ("Target", "The value the program aims for. Targets in a brief from synthetic data are "
     "illustrative."),
    ("Turn the curve", "To do better (or worse) than the baseline forecast: the value fell "
     "outside its 95% prediction interval."),
    ("Weighted comparison", "A comparison of children who received a service with similar "
     "children who did not, weighting the groups so that their risk factors match."),
    ("Victims and survivors", "The children this work is for. The brief counts those the "
     "agency identified; many more are never identified."),
]

#: The terms in alphabetical order, as the brief lists them.
TERMS = sorted(_TERMS, key=lambda t: t[0].lower())


@section(TITLE)
def build(brief) -> Section:
    return Section(None, markup.render_template("definitions.html.j2", terms=TERMS))
