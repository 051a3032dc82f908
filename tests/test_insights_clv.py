"""The CLV models against the published results on the CDNOW sample (Fader, Hardie and Lee 2005):
BG/NBD r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, log-likelihood -9582.4; Gamma-Gamma
p = 6.25, q = 3.74, gamma = 15.44 on the 946 customers who bought again. First from the file
straight into the models, then through the whole pipeline: import, SQL, snapshot."""

from collections import defaultdict
from datetime import date
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from insights import clv

SAMPLE = Path(__file__).resolve().parent / "data" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 9, 30)


def sig4(value: float) -> float:
    """``value`` to four significant figures."""
    return float(f"{value:.4g}")


def published_bgnbd(fit):
    # To four significant figures: r 0.2426, alpha 4.414, a 0.7929, b 2.426, LL -9582 (Fader, Hardie
    # and Lee's 0.243, 4.414, 0.793, 2.426 and -9582.4, to the precision their maximum has).
    assert fit.customers == 2357 and fit.trouble() == ""
    assert (sig4(fit.r), sig4(fit.alpha), sig4(fit.a), sig4(fit.b)) == (0.2426, 4.414, 0.7929, 2.426)
    assert sig4(fit.log_likelihood) == -9582.0


def published_gamma_gamma(fit):
    # p 6.250, q 3.744, gamma 15.44 (published: 6.25, 3.74, 15.44).
    assert fit.customers == 946 and fit.trouble() == ""
    assert (sig4(fit.p), sig4(fit.q), sig4(fit.v)) == (6.25, 3.744, 15.44)


@pytest.fixture(scope="module")
def summary():
    """x, t_x, T (weeks) and the mean value of repeat purchase days, per customer, over the 39-week
    calibration period; purchases on one day are one purchase."""
    if not SAMPLE.exists():
        pytest.fail(f"The CDNOW sample is missing: {SAMPLE}")
    days = defaultdict(lambda: defaultdict(float))
    for line in SAMPLE.read_text().splitlines():
        customer, _, day, _, dollars = line.split()
        days[customer][date(int(day[:4]), int(day[4:6]), int(day[6:]))] += float(dollars)
    x, t_x, T, m = [], [], [], []
    for by_day in days.values():
        seen = sorted(d for d in by_day if d <= CALIBRATION_END)
        x.append(len(seen) - 1)
        t_x.append((seen[-1] - seen[0]).days / 7)
        T.append((CALIBRATION_END - seen[0]).days / 7)
        m.append(float(np.mean([by_day[d] for d in seen[1:]])) if len(seen) > 1 else 0.0)
    return np.array(x, dtype=float), np.array(t_x), np.array(T), np.array(m)


def test_bgnbd_reproduces_the_published_fit(summary):
    x, t_x, T, _ = summary
    published_bgnbd(clv.fit_bgnbd(x, t_x, T))


def test_gamma_gamma_reproduces_the_published_fit(summary):
    x, _, _, m = summary
    published_gamma_gamma(clv.fit_gamma_gamma(m, x))


def test_the_likelihood_at_the_published_parameters_is_the_published_one(summary):
    x, t_x, T, _ = summary
    assert clv.bgnbd_log_likelihood((0.243, 4.414, 0.793, 2.426), x, t_x, T) == pytest.approx(-9582.4, abs=1.0)


def test_predictions_behave(summary):
    x, t_x, T, m = summary
    model = clv.BgNbd(0.243, 4.414, 0.793, 2.426, -9582.4, 2357)
    # No repeat purchase: alive for sure (the model's assumption); a long silence after many purchases: not.
    assert clv.p_alive(model, [0], [0], [38])[0] == 1.0
    assert clv.p_alive(model, [10], [5], [38])[0] < 0.05
    assert clv.p_alive(model, [10], [37], [38])[0] > 0.9
    # Expected purchases grow with the horizon and with recent activity.
    short, long_ = (clv.expected_purchases(model, h, [2], [30], [38])[0] for h in (13, 52))
    assert 0 < short < long_
    # Over all customers, the 39-week holdout forecast is near the 1,788 repeat purchases observed in the paper.
    assert clv.expected_purchases(model, 39, x, t_x, T).sum() == pytest.approx(1788, rel=0.1)
    gg = clv.GammaGamma(6.25, 3.74, 15.44, 0, 946)
    assert clv.expected_value(gg, [0.0], [0], fallback=0)[0] == pytest.approx(6.25 * 15.44 / 2.74)


@pytest.mark.django_db(transaction=True)
def test_the_whole_pipeline_reproduces_the_published_fits_from_imported_orders(tea_shop):
    from insights.models import MemberInsight
    from insights.services import snapshot_compute
    from rewards.services import program_settings_update

    program_settings_update(actor_user=None, changes={"time_zone": "UTC"})
    out = StringIO()
    call_command("import_cdnow", str(SAMPLE), stdout=out)
    assert "6,919 orders imported" in out.getvalue() and "2,357 new members" in out.getvalue()
    snapshot = snapshot_compute(day=CALIBRATION_END)
    model = snapshot.model
    published_bgnbd(clv.BgNbd(**model["bgnbd"]))
    published_gamma_gamma(clv.GammaGamma(**model["gamma_gamma"]))
    assert MemberInsight.objects.count() == 2357
    assert MemberInsight.objects.filter(p_alive__isnull=True).count() == 0
