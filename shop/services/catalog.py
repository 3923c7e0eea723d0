"""Products and categories: validation, ownership and the category tree."""
from __future__ import annotations

import unicodedata

from ..domain import Category, NewProduct, Page, Product, ProductFilters
from ..errors import AuthorizationError, DuplicateError, InvalidStateError, NotFoundError, ValidationError
from ..text import fold
from .validation import Checker, parse_int

MAX_LIMIT = 100


def page_args(args, default_limit: int = 20) -> tuple[int, int]:
    """page >= 1 and 1 <= limit <= 100 from a query string; anything else is refused."""
    c = Checker(args, location="query")
    page = c.integer("page", required=False, minimum=1, msg="Page must be a positive integer") or 1
    limit = c.integer("limit", required=False, minimum=1, maximum=MAX_LIMIT,
                      msg="Limit must be between 1 and 100") or default_limit
    c.done()
    return page, limit


class ProductService:
    def __init__(self, products, categories):
        self.products = products
        self.categories = categories

    def get(self, product_id: int) -> Product:
        product = self.products.get_by_id(product_id)
        if product is None:
            raise NotFoundError("Product not found")
        return product

    def list(self, args) -> Page:
        page, limit = page_args(args)
        c = Checker(args, location="query")
        category_id = c.integer("category_id", required=False, minimum=1,
                                msg="Category ID must be a positive integer")
        seller_id = c.integer("seller_id", required=False, minimum=1, msg="Seller ID must be a positive integer")
        search = c.text("search", required=False, max_len=255,
                        msg="Search query must be between 1 and 255 characters")
        min_price = c.money("min_price", required=False, minimum=0, msg="min_price must be a number >= 0")
        max_price = c.money("max_price", required=False, minimum=0, msg="max_price must be a number >= 0")
        sort = args.get("sort")
        if sort is not None and sort not in ("name", "price_asc", "price_desc", "created_at_desc",
                                              "created_at_asc"):
            c.fail("sort", "Sort must be one of: name, price_asc, price_desc, created_at_desc, created_at_asc")
        c.done()
        filters = ProductFilters(category_id=category_id, seller_id=seller_id, search=search,
                                 min_price=min_price, max_price=max_price,
                                 in_stock_only=str(args.get("in_stock_only", "")).lower() == "true")
        return self.products.list_products(filters, page, limit)

    def search(self, term, args) -> Page:
        if not isinstance(term, str) or not term.strip():
            raise ValidationError("Search term (q) is required")
        if len(term.strip()) > 100:
            raise ValidationError("Search term is too long")
        page, limit = page_args(args)
        return self.products.list_products(ProductFilters(search=term.strip()), page, limit)

    def by_category(self, category_id: int, args) -> Page:
        page, limit = page_args(args)
        return self.products.list_products(ProductFilters(category_id=category_id), page, limit)

    def by_seller(self, seller_id: int, args) -> Page:
        page, limit = page_args(args)
        return self.products.list_products(ProductFilters(seller_id=seller_id), page, limit)

    def create(self, seller_id: int, data) -> Product:
        c = Checker(data)
        name = c.text("name", max_len=200, msg="Product name is required and must be 200 characters or less")
        description = c.text("description", required=False, max_len=2000, min_len=0,
                             msg="Product description must be 2000 characters or less")
        category_id = c.integer("category_id", minimum=1, msg="Valid category ID is required")
        price = c.money("price", msg="Price must be a positive number between 0.01 and 999999.99")
        inventory = c.integer("inventory_quantity", minimum=0, maximum=999999,
                              msg="Inventory quantity must be an integer between 0 and 999,999")
        image_url = _image_url(c, data)
        c.done()
        if self.categories.get_by_id(category_id) is None:
            raise ValidationError("Category not found")
        return self.products.create(seller_id, NewProduct(
            category_id=category_id, name=name, price=price, inventory_quantity=inventory,
            description=description or None, image_url=image_url))

    def update(self, product_id: int, seller_id: int, data) -> Product:
        if not isinstance(data, dict):
            raise ValidationError("No valid fields provided for update")
        c = Checker(data)
        changes = {}
        if "name" in data:
            changes["name"] = c.text("name", max_len=200, msg="Product name must be a non-empty string"
                                     " of 200 characters or less")
        if "description" in data:
            changes["description"] = c.text("description", required=False, min_len=0, max_len=2000,
                                            msg="Product description must be 2000 characters or less") or None
        if "category_id" in data:
            changes["category_id"] = c.integer("category_id", minimum=1, msg="Valid category ID is required")
        if "price" in data:
            changes["price"] = c.money("price", msg="Price must be a positive number between 0.01 and 999999.99")
        if "inventory_quantity" in data:
            changes["inventory_quantity"] = c.integer(
                "inventory_quantity", minimum=0, maximum=999999,
                msg="Inventory quantity must be an integer between 0 and 999,999")
        if "image_url" in data or "imageUrl" in data:
            changes["image_url"] = _image_url(c, data)
        c.done()
        if not changes:
            raise ValidationError("No valid fields provided for update")
        self._owned(product_id, seller_id, "update your own products")
        if "category_id" in changes and self.categories.get_by_id(changes["category_id"]) is None:
            raise ValidationError("Category not found")
        updated = self.products.update(product_id, changes)
        if updated is None:
            raise NotFoundError("Product not found")
        return updated

    def delete(self, product_id: int, seller_id: int) -> None:
        self._owned(product_id, seller_id, "delete your own products")
        if not self.products.delete(product_id):
            raise NotFoundError("Product not found")

    def set_inventory(self, product_id: int, seller_id: int, data) -> Product:
        raw = data.get("inventory_quantity") if isinstance(data, dict) else None
        if raw is None:
            raise ValidationError("Inventory quantity is required")
        quantity = parse_int(raw)
        if quantity is None or quantity < 0:
            raise ValidationError("Inventory quantity must be a non-negative integer")
        if quantity > 999999:
            raise ValidationError("Inventory quantity cannot exceed 999,999")
        self._owned(product_id, seller_id, "update inventory for your own products")
        updated = self.products.set_inventory(product_id, quantity)
        if updated is None:
            raise NotFoundError("Product not found")
        return updated

    def stats(self, seller_id: int):
        return self.products.seller_stats(seller_id)

    def _owned(self, product_id: int, seller_id: int, action: str) -> Product:
        product = self.get(product_id)
        if product.seller_id != seller_id:
            raise AuthorizationError(f"You can only {action}")
        return product


def _image_url(c: Checker, data) -> str | None:
    key = "image_url" if "image_url" in data else "imageUrl"
    c.data = {**data, "image_url": data.get(key)}
    value = c.text("image_url", required=False, min_len=0, max_len=500,
                   msg="Image URL must be a string of 500 characters or less")
    if value and not _linkable(value):
        c.fail("image_url", "Image URL must be an absolute path or an http(s) URL")
        return None
    return value or None


def _linkable(url: str) -> bool:
    r"""A path on this site ("/p.png") or an http(s) URL, and nothing a browser reads otherwise:
    "//host" and "/\host" are other hosts (browsers read a backslash as a slash), and browsers
    drop tabs and newlines inside a URL ("/<tab>/host" is "//host"), so no control character either."""
    if "\\" in url or any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in url):
        return False
    if url.startswith("/"):
        return not url.startswith("//")
    return url.startswith(("https://", "http://"))


class CategoryService:
    """The category tree. Anyone may read it and any seller may add to it; a category is then
    its creator's: only they may rename, move or delete it, and only while no other seller's
    products are in it (others rely on its name). The shop's own categories (no owner: the
    seeded tree, and those from before owners) are changed by operators alone, with
    `flask --app shop category ...`, which passes no user (docs/api.md)."""

    def __init__(self, categories, products=None):
        self.categories = categories
        self.products = products

    def tree(self) -> list[dict]:
        """Roots with their children, each level sorted by name."""
        all_ = self.categories.list_all()
        nodes = {c.id: {"category": c, "children": []} for c in all_}
        roots = []
        for c in all_:
            parent = nodes.get(c.parent_id) if c.parent_id is not None else None
            (parent["children"] if parent else roots).append(nodes[c.id])
        return roots

    def flat(self) -> list[Category]:
        return self.categories.list_all()

    def roots(self) -> list[Category]:
        return self.categories.list_roots()

    def find(self, category_id: int) -> Category | None:
        return self.categories.get_by_id(category_id)

    def get(self, category_id: int) -> Category:
        category = self.categories.get_by_id(category_id)
        if category is None:
            raise NotFoundError("Category not found")
        return category

    def children(self, parent_id: int) -> list[Category]:
        if self.categories.get_by_id(parent_id) is None:
            raise NotFoundError("Parent category not found")
        return self.categories.list_children(parent_id)

    def path(self, category_id: int) -> list[Category]:
        path = self.categories.get_path(category_id)
        if not path:
            raise NotFoundError("Category not found")
        return path

    def search(self, term) -> list[Category]:
        if not isinstance(term, str) or not term.strip():
            raise ValidationError("Search term (q) is required")
        needle = fold(term.strip())  # the folding the stores' own name lookups use (shop/text.py)
        return [c for c in self.categories.list_all() if needle in fold(c.name)]

    def create(self, data, owner_id: int | None = None) -> Category:
        c = Checker(data)
        name = c.text("name", max_len=100, msg="Category name is required and must be 100 characters or less")
        parent_id = c.integer("parent_id", required=False, minimum=1, msg="Parent ID must be a positive integer")
        c.done()
        self._unique(name)
        if parent_id is not None:
            self._valid_parent(parent_id)
        return self.categories.create(name, parent_id, owner_id)

    def update(self, category_id: int, data, user_id: int | None = None) -> Category:
        existing = self.get(category_id)
        self._may_change(existing, user_id, "rename or move")
        c = Checker(data)
        changes = {}
        if isinstance(data, dict) and data.get("name") is not None:
            changes["name"] = c.text("name", max_len=100,
                                     msg="Category name is required and must be 100 characters or less")
        if isinstance(data, dict) and "parent_id" in data:
            changes["parent_id"] = c.integer("parent_id", required=False, minimum=1,
                                             msg="Parent ID must be a positive integer")
        c.done()
        if changes.get("name"):
            self._unique(changes["name"], exclude=category_id)
        if changes.get("parent_id") is not None and changes["parent_id"] != existing.parent_id:
            parent_id = changes["parent_id"]
            if parent_id == category_id:
                raise InvalidStateError("Cannot create circular category relationship")
            self._valid_parent(parent_id)
            if self.categories.list_children(category_id):
                raise InvalidStateError("Category with children cannot become a subcategory")
        updated = self.categories.update(category_id, changes)
        if updated is None:
            raise NotFoundError("Category not found")
        return updated

    def delete(self, category_id: int, user_id: int | None = None) -> None:
        self._may_change(self.get(category_id), user_id, "delete")
        if not self.categories.delete(category_id):
            raise NotFoundError("Category not found")

    def set_owner(self, category_id: int, owner_id: int | None) -> Category:
        """Hand a category to a seller, or (None) to the shop: for operators."""
        self.get(category_id)
        updated = self.categories.update(category_id, {"owner_id": owner_id})
        if updated is None:
            raise NotFoundError("Category not found")
        return updated

    def _may_change(self, category: Category, user_id: int | None, action: str) -> None:
        """None is an operator (the CLI); a seller changes only what they created, and what no
        other seller's products rely on."""
        if user_id is None:
            return
        if category.owner_id is None:
            raise AuthorizationError(f"Only the shop's operators can {action} the shop's own categories")
        if category.owner_id != user_id:
            raise AuthorizationError(f"Only the seller who created this category can {action} it")
        if self.products is not None and action != "delete":  # a delete needs it empty anyway
            everyone = self.products.list_products(ProductFilters(category_id=category.id), 1, 1).total
            mine = self.products.list_products(ProductFilters(category_id=category.id, seller_id=user_id), 1, 1).total
            if everyone > mine:
                raise AuthorizationError("Other sellers' products are in this category: it is no longer yours"
                                         f" alone to {action}; ask the shop's operators")

    def _unique(self, name: str, exclude: int | None = None) -> None:
        same = self.categories.get_by_name(name)
        if same is not None and same.id != exclude:
            raise DuplicateError("Category name already exists", field="name")

    def _valid_parent(self, parent_id: int) -> None:
        parent = self.categories.get_by_id(parent_id)
        if parent is None:
            raise NotFoundError("Parent category not found")
        if parent.parent_id is not None:
            raise InvalidStateError("Cannot create more than two levels of categories")
