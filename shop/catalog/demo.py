"""The demo catalog `make up` loads: a small print shop, a couple of products already low."""

from decimal import Decimal

from django.db import transaction

from shop.catalog.models import Category, Product

CATEGORIES = {
    "posters": "Posters & Art Prints",
    "business-cards": "Business Cards",
    "flyers": "Flyers & Leaflets",
    "stickers": "Stickers & Labels",
    "canvas": "Canvas Prints",
    "photo-books": "Photo Books",
}

# sku, name, category slug, price, stock, low-stock threshold. Every product starts above both
# its own threshold and thresholds.yml's low_stock_threshold, so a fresh `make up` raises no
# LowStock alert (`make simulate PROFILE=stock-depletion` runs stock down for real).
PRODUCTS = [
    ("PST-A3-MATTE", "A3 poster, matte 170gsm", "posters", "14.90", 240, 25),
    ("PST-A2-MATTE", "A2 poster, matte 170gsm", "posters", "19.90", 180, 20),
    ("PST-A1-SATIN", "A1 poster, satin 200gsm", "posters", "29.00", 90, 15),
    ("PST-A2-GICLEE", "A2 giclée art print, Hahnemühle 308gsm", "posters", "64.00", 24, 8),
    ("BC-STD-250", "Business cards 85x55, 350gsm, 250 pcs", "business-cards", "24.00", 400, 40),
    ("BC-STD-500", "Business cards 85x55, 350gsm, 500 pcs", "business-cards", "36.00", 300, 30),
    (
        "BC-LUX-250",
        "Luxe business cards, 600gsm soft-touch, 250 pcs",
        "business-cards",
        "58.00",
        75,
        10,
    ),
    ("BC-FOIL-100", "Gold-foil business cards, 100 pcs", "business-cards", "72.00", 20, 5),
    ("FLY-A5-250", "A5 flyers, 150gsm gloss, 250 pcs", "flyers", "39.00", 350, 30),
    ("FLY-A5-1000", "A5 flyers, 150gsm gloss, 1000 pcs", "flyers", "89.00", 160, 20),
    ("FLY-A4-500", "A4 leaflets, tri-fold, 500 pcs", "flyers", "119.00", 120, 15),
    ("STK-CIR-50", "Round vinyl stickers 50mm, 50 pcs", "stickers", "17.50", 500, 50),
    ("STK-DIE-100", "Die-cut vinyl stickers, 100 pcs", "stickers", "44.00", 220, 25),
    ("LBL-RL-500", "Product labels on a roll, 500 pcs", "stickers", "69.00", 140, 20),
    ("CNV-30x40", "Canvas print 30x40cm, 18mm frame", "canvas", "45.00", 80, 10),
    ("CNV-50x70", "Canvas print 50x70cm, 38mm frame", "canvas", "79.00", 60, 10),
    ("CNV-90x60-PAN", "Panoramic canvas 90x60cm", "canvas", "119.00", 35, 5),
    ("PB-A4-24", "A4 photo book, hardcover, 24 pages", "photo-books", "39.90", 110, 15),
    ("PB-A4-48", "A4 photo book, hardcover, 48 pages", "photo-books", "54.90", 90, 12),
    ("PB-SQ-LAY", "30x30 layflat photo book, 40 pages", "photo-books", "89.00", 45, 8),
]


@transaction.atomic
def demo_catalog_load() -> tuple[int, int]:
    """Create or refresh the demo catalog; returns (products created, products updated).

    Running it again keeps stock as sales left it: stock is only set when a product is new.
    """
    categories = {
        slug: Category.objects.update_or_create(slug=slug, defaults={"name": name})[0]
        for slug, name in CATEGORIES.items()
    }
    created = updated = 0
    for sku, name, category, price, stock, threshold in PRODUCTS:
        _, was_created = Product.objects.update_or_create(
            sku=sku,
            defaults={
                "name": name,
                "category": categories[category],
                "price": Decimal(price),
                "low_stock_threshold": threshold,
                "is_active": True,
            },
            create_defaults={
                "name": name,
                "category": categories[category],
                "price": Decimal(price),
                "low_stock_threshold": threshold,
                "stock_quantity": stock,
            },
        )
        created += was_created
        updated += not was_created
    return created, updated
