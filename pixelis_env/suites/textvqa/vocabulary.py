"""Words the text generators print: sign words, company names, items, filler prose.

Sign words are upper case and avoid look-alike letter/digit mixes, so OCR of a
legible crop reads them exactly; numbers are printed on their own.
"""

from __future__ import annotations

SIGN_WORDS = (
    "EXIT", "OPEN", "HOTEL", "BAKERY", "PHARMACY", "TAXI", "CAFE", "MARKET", "LIBRARY", "MUSEUM", "STATION",
    "BANK", "POLICE", "GARAGE", "PARKING", "TICKETS", "BOOKS", "FLOWERS", "PIZZA", "SUSHI", "DINER", "THEATER",
    "CINEMA", "GALLERY", "BARBER", "TAILOR", "FARM", "HARBOR", "BRIDGE", "GARDEN", "SCHOOL", "OFFICE", "STUDIO",
    "KITCHEN", "BAZAAR", "CANDY", "DELI", "GROCERY", "HARDWARE", "JEWELRY", "LAUNDRY", "MOTEL", "NURSERY",
    "ORCHARD", "POTTERY", "RECORDS", "SALOON", "TOBACCO", "TOYS", "VINTAGE", "WINERY", "BREWERY", "COFFEE",
    "FISH", "BAGELS", "CYCLES", "MUSIC", "DANCE", "YOGA", "BOXING", "SURF", "CAMPING", "ANTIQUES", "STAMPS",
)
COMPANIES = (
    "Northwind", "Bluestone", "Maple Ridge", "Harbor Point", "Silver Creek", "Redwood", "Summit", "Lakeside",
    "Granite", "Oakmont", "Westfield", "Brightwater", "Cedar Hill", "Stonebridge", "Foxglove", "Kestrel",
)
DOCUMENT_TYPES = ("Invoice", "Annual Report", "Purchase Order", "Statement", "Shipping Notice", "Receipt")
NUMBER_LABELS = (("Invoice No.", "invoice number"), ("Order No.", "order number"),
                 ("Reference No.", "reference number"), ("Account No.", "account number"))
ITEMS = (
    "Paper", "Stapler", "Toner", "Envelopes", "Markers", "Folders", "Cables", "Batteries", "Notebooks", "Labels",
    "Scissors", "Tape", "Monitors", "Keyboards", "Chairs", "Lamps",
)
CAPTIONS = (
    "Sales by region", "Monthly revenue", "Shipping volume", "Customer growth", "Energy use by site",
    "Orders per week", "Inventory levels", "Staff by department", "Returns by product", "Costs by quarter",
)
FILLER = (
    "the", "report", "period", "review", "shows", "order", "market", "growth", "costs", "team", "quarter", "service",
    "customer", "delivery", "results", "planned", "budget", "total", "region", "product", "stable", "increase",
    "compared", "with", "last", "year", "during", "and", "of", "in", "for", "was", "were", "new", "office", "supply",
    "payment", "terms", "account", "balance", "due", "within", "days", "please", "contact", "support", "details",
    "section", "summary", "below", "above", "annual", "figures", "include", "all", "items", "listed",
)
