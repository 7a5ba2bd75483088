"""Fixed storage key strings of :class:`~biotune_optuna.samplers.BioTuneSampler`.

The keys are pinned strings, not derived from a class name (as Optuna's ``BaseGASampler`` does),
so that renaming or subclassing the sampler never orphans the state of an existing study.
"""

from __future__ import annotations

from biotune_optuna.trials import DUPLICATE_RETRY_KEY  # a heartbeat retry's key, shared
from biotune_optuna.trials import GENERATION_ATTR


__all__ = ["DUPLICATE_RETRY_KEY"]  # and the keys below


#: Trial system attr: the trial's place in the evolutionary search, one JSON object
#: ``{"generation", "role", "slot", "parents", "prototype", "pool"}``.
LINEAGE_KEY = "biotune:lineage"
#: Study system attr prefix: the sorted population (trial numbers, best first) that closed a
#: generation, e.g. ``"biotune:population:3"``. Written once per generation, read by every worker.
POPULATION_KEY_PREFIX = "biotune:population:"
#: Study system attr prefix: the trial numbers a generation's closing ranked (its members and
#: the late ones it took in), e.g. ``"biotune:considered:3"``; a finished trial in none of them
#: joins the next generation that closes (a retry that finished after its generation closed).
CONSIDERED_KEY_PREFIX = "biotune:considered:"
#: Study system attr: the structural settings a study was started with (checked on resume).
SETTINGS_KEY = "biotune:settings"
#: Study system attr: the prior plans a study was started with, best first (``warm_start``).
WARM_START_KEY = "biotune:warm_start"
#: Study and trial user attr: where a study's prior plans, and a seeded trial's genes, came from.
WARM_START_USER_ATTR = "warm_start"
#: Study user attr: the registry name of the sampler a study spec created the study with.
SAMPLER_USER_ATTR = "sampler"

#: Trial user attrs mirrored for optuna-dashboard (system attrs are never shown there).
GENERATION_USER_ATTR = GENERATION_ATTR
ROLE_USER_ATTR = "role"
PARENTS_USER_ATTR = "parents"

ROLE_INIT = "init"
ROLE_ELITE = "elite"
ROLE_EXPLOIT = "exploit"
ROLE_OFFSPRING = "offspring"
ROLE_IMMIGRANT = "immigrant"
