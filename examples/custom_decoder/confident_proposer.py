"""A decoder written outside the adafuse package: AdaFuse with another proposal rule.

Only the most confident models propose: a model whose first margin Δ1 trails the best one by
more than `lead` keeps its proposals to itself this round. Every model still scores every
proposal, and the winner is picked as in AdaFuse (`adafuse.decoding.decide`).

Its parameters are its constructor's keyword arguments; `bounds` gives the range of the new
one. That is all a run needs: `conf/decoder/confident_proposer.yaml` names the class by
`_target_`, and the run checks the values against this declaration before loading a model.
"""

from __future__ import annotations

from adafuse import AdaFuse
from adafuse.decoding.registry import check_parameters


class ConfidentProposer(AdaFuse):
    name = "confident_proposer"
    bounds = {**AdaFuse.bounds, "lead": (0, 1)}

    def __init__(self, models, *, theta_delta: float = 0.7, max_words: int = 3,
                 num_candidates: int = 3, lead: float = 0.1, weights=None, mode: str = "cached",
                 engine=None):
        super().__init__(models, theta_delta=theta_delta, max_words=max_words,
                         num_candidates=num_candidates, weights=weights, mode=mode, engine=engine)
        check_parameters(ConfidentProposer, {"lead": lead})
        self.lead = float(lead)

    def propose(self, engines, states, keys, fold=False):
        """AdaFuse's step 1, then each prompt's proposals of the less confident models dropped."""
        proposed = super().propose(engines, states, keys, fold)
        for key in keys:
            first = [p.by_key[key].margins[0] for p in proposed]
            for per_model, margin in zip(proposed, first):
                if max(first) - margin > self.lead:
                    per_model.by_key[key].proposals = []
        return proposed
