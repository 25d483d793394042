"""The forecast read model: closed won, commit, best case, weighted pipeline, targets and attainment per period
and owner, team, region or pipeline, as of any instant.

`handlers` is its write side (versioned rows of deals, pipelines' stage defaults, teams and targets),
`queries` its query side; the rules are `domain.forecasting` and `domain.targets`. The public names are here.
"""

from __future__ import annotations

from projections.forecast.handlers import ForecastReadModel
from projections.forecast.queries import (BY, ForecastQueries, ForecastReport, ForecastRow, forecast_period,
                                          require_forecast_by, require_forecast_grain)

__all__ = ["BY", "ForecastQueries", "ForecastReadModel", "ForecastReport", "ForecastRow", "forecast_period",
           "require_forecast_by", "require_forecast_grain"]
