"""A partner's traffic for locust (``make loadtest`` runs it; see bench/README.md).

Each simulated partner client loops without pause over this mix of tasks: single orders with an
``Idempotency-Key`` 50%, member reads 30%, a redemption and a check of its coupon 10%, batches of
20 orders 5%, custom events 5%. Members are ``m0`` ... ``m{LOADTEST_MEMBERS-1}``, each with points
enough to redeem; ``LOADTEST_KEY`` is the partner's key and ``LOADTEST_REWARD`` the reward's id.
"""

import os
import random
import uuid
from datetime import UTC, datetime

from locust import FastHttpUser, constant, task

KEY = os.environ.get("LOADTEST_KEY", "")
MEMBERS = int(os.environ.get("LOADTEST_MEMBERS", "2000"))
REWARD = int(os.environ.get("LOADTEST_REWARD", "0"))
BATCH = 20


def _order(member: str) -> dict:
    quantity = random.randint(1, 3)
    return {"order_id": uuid.uuid4().hex, "member": member, "placed_at": datetime.now(UTC).isoformat(),
            "currency": "EUR", "total": f"{12.5 * quantity:.2f}",
            "lines": [{"sku": "TEA-1", "name": "Green tea", "category": "tea", "quantity": quantity,
                       "unit_price": "12.50"}]}


class Partner(FastHttpUser):
    wait_time = constant(0)

    def _headers(self, **more) -> dict:
        return {"Authorization": f"Api-Key {KEY}", "Content-Type": "application/json", **more}

    def _member(self) -> str:
        return f"m{random.randrange(MEMBERS)}"

    @task(50)
    def order(self):
        self.client.post("/api/v1/orders/", json=_order(self._member()), name="order (Idempotency-Key)",
                         headers=self._headers(**{"Idempotency-Key": uuid.uuid4().hex}))

    @task(30)
    def member(self):
        self.client.get(f"/api/v1/members/{self._member()}/", name="member read", headers=self._headers())

    @task(10)
    def redeem_and_check(self):
        with self.client.post("/api/v1/redemptions/", json={"member": self._member(), "reward": REWARD},
                              name="redemption", headers=self._headers(), catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            code = response.json()["coupon"]["code"]
        self.client.get(f"/api/v1/coupons/{code}/", name="coupon check", headers=self._headers())

    @task(5)
    def batch(self):
        self.client.post("/api/v1/orders/batch/", json={"orders": [_order(self._member()) for _ in range(BATCH)]},
                         name=f"orders batch ({BATCH})", headers=self._headers())

    @task(5)
    def event(self):
        self.client.post("/api/v1/events/", name="event", headers=self._headers(), json={
            "event_id": uuid.uuid4().hex, "type": "app_opened", "member": self._member(),
            "occurred_at": datetime.now(UTC).isoformat(), "properties": {"screen": "home"}})
