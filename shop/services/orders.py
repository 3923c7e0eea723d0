"""Checkout and order history."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from ..domain import FORWARD_STATUSES, MAX_ORDER_TOTAL, Order, Page
from ..errors import AuthorizationError, InvalidStateError, NotFoundError, PaymentError, ValidationError
from ..text import fold
from .cart import Cart

PAYMENT_METHODS = ("credit_card", "debit_card", "paypal")
# Test card numbers of the simulated payment provider and what they do.
DECLINES = {
    "4000000000000002": "Your card was declined. Please try a different payment method.",
    "4000000000000119": "Payment processing error. Please try again later.",
    "4000000000000127": "Insufficient funds. Please check your account balance.",
}
SUCCEEDING_CARD = "4242424242424242"
DECLINE_OUTCOMES = {"4000000000000002": "is declined", "4000000000000119": "fails with a processing error",
                    "4000000000000127": "is refused for insufficient funds"}


def card_hints() -> dict:
    """The simulated provider's test numbers, as the checkout page shows them."""
    spaced = lambda n: " ".join(n[i:i + 4] for i in range(0, len(n), 4))  # noqa: E731
    return {"success": spaced(SUCCEEDING_CARD),
            "declines": [(spaced(n), DECLINE_OUTCOMES[n]) for n in DECLINES]}


# The words a client may send; every one is a stored status of its own (ORDER_STATUSES).
STATUS_WORDS = ("pending", "processing", "shipped", "delivered", "completed", "cancelled")


@dataclass(frozen=True)
class Payment:
    success: bool
    transaction_id: str


class PaymentService:
    """A simulated provider: PayPal always succeeds; some test card numbers are declined."""

    def __init__(self, delay_ms: int = 0):
        self.delay_ms = delay_ms

    @staticmethod
    def validate(data) -> None:
        errors = []
        method = data.get("paymentMethod") if isinstance(data, dict) else None
        if not method:
            errors.append("Payment method is required")
        elif method not in PAYMENT_METHODS:
            errors.append("Invalid payment method. Must be credit_card, debit_card, or paypal")
        elif method != "paypal":
            details = data.get("paymentDetails")
            if not isinstance(details, dict):
                errors.append("Payment details are required for card payments")
            else:
                number = details.get("cardNumber")
                if not isinstance(number, str) or not re.fullmatch(r"\d{13,19}", number.replace(" ", "")):
                    errors.append("Valid card number is required")
                expiry = details.get("expiryDate")
                if not isinstance(expiry, str) or not re.fullmatch(r"(0[1-9]|1[0-2])/\d{2}", expiry):
                    errors.append("Valid expiry date is required (MM/YY format)")
                cvv = details.get("cvv")
                if not isinstance(cvv, str) or not re.fullmatch(r"\d{3,4}", cvv):
                    errors.append("Valid CVV is required")
                name = details.get("cardholderName")
                if not isinstance(name, str) or len(name.strip()) < 2 or len(name) > 100:
                    errors.append("Cardholder name is required")
        if errors:
            raise ValidationError(", ".join(errors), details=[{"msg": e} for e in errors])

    def charge(self, amount: Decimal, data) -> Payment:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        method = data["paymentMethod"]
        if method != "paypal":
            number = data["paymentDetails"]["cardNumber"].replace(" ", "")
            if number in DECLINES:
                raise PaymentError(DECLINES[number])
        prefix = {"paypal": "PP", "credit_card": "CC", "debit_card": "DC"}[method]
        return Payment(True, f"{prefix}_{int(time.time() * 1000)}_{secrets.token_hex(3).upper()}")


class OrderService:
    def __init__(self, orders, cart_service, payments: PaymentService):
        self.orders = orders
        self.cart_service = cart_service
        self.payments = payments

    def checkout(self, user_id: int, data) -> tuple[Order, Payment]:
        cart = self.cart_service.get(user_id)
        if not cart.items:
            raise ValidationError("Cart is empty")
        self.payments.validate(data)
        if cart.issues:
            raise ValidationError("Inventory issues: " + ", ".join(cart.issues), details=cart.issues)
        if cart.total_amount > MAX_ORDER_TOTAL:
            raise ValidationError(f"An order's total cannot exceed {MAX_ORDER_TOTAL:,}; "
                                  f"this cart comes to {cart.total_amount:,}. Split it into several orders.")
        # The simulated charge is an authorisation: were the order transaction to fail
        # (a concurrent buyer took the last item), nothing would be captured.
        payment = self.payments.charge(cart.total_amount, data)
        return self.orders.checkout(user_id), payment

    def validate(self, user_id: int) -> dict:
        cart: Cart = self.cart_service.get(user_id)
        issues = [] if cart.items else ["Cart is empty"]
        issues += cart.issues
        return {"eligible": not issues, "issues": issues}

    def _party_to(self, order_id: int, user_id: int) -> tuple[Order, bool, bool]:
        """The order, and whether `user_id` is its buyer or a seller of one of its products.
        Anyone else gets the answer a missing order gets: an order's existence is its parties'
        business (a 403 here would let anyone count the orders by trying ids)."""
        order = self.orders.get_by_id(order_id)
        buyer = order is not None and order.user_id == user_id
        seller = order is not None and any(i.product is not None and i.product.seller_id == user_id
                                           for i in order.items)
        if not (buyer or seller):
            raise NotFoundError("Order not found")
        return order, buyer, seller

    def get(self, order_id: int, user_id: int) -> Order:
        order, buyer, _ = self._party_to(order_id, user_id)
        if not buyer:
            raise AuthorizationError("You can only view your own orders")
        return order

    def list(self, user_id: int, page: int, limit: int) -> Page:
        return self.orders.list_by_user(user_id, page, limit)

    def recent(self, user_id: int, limit: int) -> list[Order]:
        return self.orders.list_by_user(user_id, 1, limit).items

    def cancel(self, order_id: int, user_id: int) -> Order:
        _, buyer, _ = self._party_to(order_id, user_id)
        if not buyer:
            raise AuthorizationError("You can only cancel your own orders")
        return self.orders.cancel(order_id)

    def set_status(self, order_id: int, user_id: int, status) -> Order:
        """Move an order forward along pending -> completed -> processing -> shipped -> delivered,
        or cancel it (the rules are listed in docs/api.md).

        Sellers of the order's products move it forward, skipping steps if they like; its buyer
        may cancel it while it is pending. Nothing moves back: going back to pending would make a
        paid order cancellable again, and a cancel returns stock.
        """
        if not status:
            raise ValidationError("Status is required")
        order, buyer, seller = self._party_to(order_id, user_id)  # before the status: a 400 would tell too
        if not isinstance(status, str) or status not in STATUS_WORDS:
            raise ValidationError("Invalid status. Must be one of: " + ", ".join(STATUS_WORDS))
        if status == "cancelled" and not buyer:
            raise AuthorizationError("Only the buyer can cancel an order")
        if status != "cancelled" and not seller:
            raise AuthorizationError("Only a seller of this order's products can change its status")
        if order.status == status:
            return order  # a repeat (a retried request) is not an error
        if order.status not in FORWARD_STATUSES:
            raise InvalidStateError(f"The order is {order.status}; its status can no longer change")
        if status == "cancelled":
            if order.status != "pending":
                raise InvalidStateError(f"The order is {order.status}; only pending orders can be cancelled")
            return self.orders.cancel(order_id)  # the one path that returns stock, exactly once
        if FORWARD_STATUSES.index(status) < FORWARD_STATUSES.index(order.status):
            raise InvalidStateError(f"The order is {order.status}; it cannot go back to {status}")
        # Conditional on the status read above: a cancel racing this cannot be overwritten.
        return self.orders.set_status(order_id, status, expected=order.status)

    def summary(self, user_id: int) -> dict:
        s = self.orders.summary_by_user(user_id)
        average = (s.total_spent / s.total_orders).quantize(Decimal("0.01")) if s.total_orders else Decimal(0)
        return {"totalOrders": s.total_orders, "totalSpent": float(s.total_spent),
                # Paid orders in fulfilment (processing, shipped, delivered) count as completed.
                "completedOrders": s.total_orders - s.pending_orders - s.cancelled_orders,
                "pendingOrders": s.pending_orders,
                "cancelledOrders": s.cancelled_orders, "averageOrderValue": float(average)}

    def search(self, user_id: int, term: str) -> list[Order]:
        """Orders whose id, status or an item's product name or description contains `term`."""
        needle = fold(term)
        found, page = [], 1
        while True:
            batch = self.orders.list_by_user(user_id, page, 100)
            for o in batch.items:
                if (term in str(o.id) or needle in o.status
                        or any(needle in fold(i.product.name or "")
                               or needle in fold(i.product.description or "") for i in o.items)):
                    found.append(o)
            if page >= batch.total_pages:
                return found
            page += 1
