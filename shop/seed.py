"""A believable demo catalogue: sellers, a shopper, a category tree, products."""
from __future__ import annotations

from decimal import Decimal

from .domain import NewProduct, NewUser

DEMO_PASSWORD = "Password123!"
USERS = [
    ("alice_gadgets", "alice@example.com", "Alice", "Nguyen", True),
    ("bob_books", "bob@example.com", "Bob", "Okafor", True),
    ("demo_user", "demo@example.com", "Dana", "Moreau", False),
]
CATEGORIES = {
    "Electronics": ["Laptops", "Phones", "Audio"],
    "Books": ["Fiction", "Non-fiction"],
    "Home & Kitchen": ["Cookware", "Furniture"],
    "Sports & Outdoors": ["Camping", "Fitness"],
}
PRODUCTS = [  # seller, category, name, price, stock, description
    ("alice_gadgets", "Laptops", "Aero 14 Laptop", "1299.00", 8, "14-inch ultralight laptop, 16 GB RAM, 1 TB SSD."),
    ("alice_gadgets", "Laptops", "Workhorse 16 Pro", "1899.90", 4, "16-inch laptop for creators with a colour-accurate display."),
    ("alice_gadgets", "Phones", "Pixelight 8", "699.00", 15, "6.2-inch phone with a great low-light camera."),
    ("alice_gadgets", "Phones", "Rugged Phone X", "449.50", 6, "Drop-proof phone with a two-day battery."),
    ("alice_gadgets", "Audio", "Quiet Comfort Headphones", "249.99", 20, "Over-ear noise-cancelling headphones."),
    ("alice_gadgets", "Audio", "Pocket Speaker", "59.90", 30, "Waterproof Bluetooth speaker, 12 h playback."),
    ("alice_gadgets", "Electronics", "USB-C Charger 65W", "39.00", 50, "Compact GaN charger for laptops and phones."),
    ("bob_books", "Fiction", "The Quiet Harbour", "14.99", 40, "A novel of a fishing town and the summer it changed."),
    ("bob_books", "Fiction", "Stars Over Lisbon", "12.50", 25, "A wartime spy story told in letters."),
    ("bob_books", "Non-fiction", "Designing Data Systems", "49.00", 12, "Storage engines, replication and partitioning explained."),
    ("bob_books", "Non-fiction", "The Joy of Bread", "24.00", 18, "Sourdough, rye and flatbreads from one starter."),
    ("bob_books", "Cookware", "Cast Iron Skillet 28 cm", "34.90", 22, "Pre-seasoned skillet for stove, oven and campfire."),
    ("bob_books", "Cookware", "Chef's Knife 20 cm", "79.00", 10, "Forged stainless steel, full tang."),
    ("bob_books", "Furniture", "Oak Bookshelf", "189.00", 3, "Five shelves of solid oak, 180 cm tall."),
    ("alice_gadgets", "Camping", "Two-Person Tent", "159.00", 7, "Freestanding tent, 2.1 kg, three seasons."),
    ("alice_gadgets", "Camping", "Headlamp 400 lm", "29.95", 35, "Rechargeable headlamp with red light mode."),
    ("bob_books", "Fitness", "Yoga Mat", "27.00", 0, "6 mm non-slip mat. Back in stock soon."),
    ("bob_books", "Fitness", "Adjustable Dumbbells", "219.00", 5, "2.5-24 kg per hand, quick dial."),
]


def seed(repos, auth_service) -> dict:
    """Insert the catalogue; returns counts. Call only on an empty database."""
    users = {}
    for username, email, first, last, seller in USERS:
        user = repos.users.create(NewUser(username=username, email=email,
                                          password_hash=auth_service.hash_password(DEMO_PASSWORD),
                                          first_name=first, last_name=last))
        if seller:
            user = repos.users.set_seller(user.id, True)
        users[username] = user
    categories = {}
    for root, children in CATEGORIES.items():
        parent = repos.categories.create(root, None)
        categories[root] = parent
        for child in children:
            categories[child] = repos.categories.create(child, parent.id)
    for seller, cat, name, price, stock, description in PRODUCTS:
        repos.products.create(users[seller].id, NewProduct(
            category_id=categories[cat].id, name=name, price=Decimal(price),
            inventory_quantity=stock, description=description))
    return {"users": len(users), "categories": len(categories), "products": len(PRODUCTS)}
