"""``{% load orders_status %}{{ order|order_status }}``: an order's status in the words every
page shows (``orders.progress.order_status_words``)."""

from django import template

from orders.models import Order
from orders.progress import order_status_words

register = template.Library()


@register.filter
def order_status(order: Order) -> str:
    return order_status_words(order)
