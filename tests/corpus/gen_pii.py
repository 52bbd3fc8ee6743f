"""PII corpus: personal data in tool results and arguments, and the numbers that only look like it."""
import ipaddress
import json

from gen_common import RNG, call, rand, result_text, uuid

FIRST = ["Dana", "Maria", "Wei", "Olu", "Priya", "Jonas", "Aiko", "Mateo", "Sofia", "Liam", "Noor", "Hannah"]
LAST = ["Kim", "Lopez", "Zhang", "Adeyemi", "Sharma", "Berg", "Tanaka", "Rossi", "Novak", "Walsh", "Haddad", "Fischer"]
DOMAINS = ["gmail.com", "outlook.com", "acme-corp.com", "contoso.co.uk", "mail.uni-heidelberg.de", "protonmail.ch",
           "fastmail.fm", "yahoo.co.jp", "northwind.io", "globex.com.au"]


def person():
    return RNG.choice(FIRST), RNG.choice(LAST)


def email():
    f, l = person()
    local = RNG.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}_{l}{RNG.randrange(10, 99)}", f"{f}+billing"]).lower()
    return f"{local}@{RNG.choice(DOMAINS)}"


def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix] + [RNG.randrange(10) for _ in range(length - len(prefix) - 1)]
    for check in range(10):
        ds = digits + [check]
        total = 0
        for i, d in enumerate(reversed(ds)):
            if i % 2 == 1:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10 == 0:
            return "".join(map(str, ds))


def luhn_break(number):
    last = (int(number[-1]) + RNG.randrange(1, 10)) % 10
    return number[:-1] + str(last)


CARD_PREFIXES = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("2500", 16),
                 ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("644", 16), ("3530", 16), ("3589", 19),
                 ("36", 14), ("300", 14), ("62", 16), ("62", 19)]


def card():
    prefix, length = RNG.choice(CARD_PREFIXES)
    return luhn_complete(prefix, length)


def group(number):
    if len(number) == 15:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    if len(number) == 16:
        sep = RNG.choice([" ", "-"])
        return sep.join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def ssn():
    while True:
        area = RNG.randrange(1, 900)
        if area != 666:
            return f"{area:03d}-{RNG.randrange(1, 100):02d}-{RNG.randrange(1, 10000):04d}"


IBAN_FORMATS = {"DE": "d18", "GB": "L4d14", "FR": "d23", "ES": "d20", "IT": "Ld22", "NL": "L4d10", "BE": "d12",
                "CH": "d17", "AT": "d16", "PL": "d24", "SE": "d20", "NO": "d11", "IE": "L4d14", "PT": "d21", "FI": "d14"}


def bban(fmt):
    out, i = "", 0
    while i < len(fmt):
        kind = fmt[i]
        j = i + 1
        while j < len(fmt) and fmt[j].isdigit():
            j += 1
        n = int(fmt[i + 1:j] or 1)
        out += "".join(RNG.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ" if kind == "L" else "0123456789") for _ in range(n))
        i = j
    return out


def iban(country=None, valid=True):
    country = country or RNG.choice(list(IBAN_FORMATS))
    b = bban(IBAN_FORMATS[country])
    numeric = "".join(str(int(c, 36)) for c in b + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + RNG.randrange(1, 50)) % 97 or 3
    return f"{country}{check:02d}{b}"


def spaced(i):
    return " ".join(i[k:k + 4] for k in range(0, len(i), 4))


def public_v4():
    while True:
        ip = ipaddress.IPv4Address(RNG.randrange(1 << 24, 223 << 24))
        if ip.is_global:
            return str(ip)


def public_v6():
    first = RNG.choice(["2a00", "2a01", "2a02", "2600", "2607", "2401", "2c0f", "2804"])
    groups = [first] + [f"{RNG.randrange(0, 1 << 16):x}" for _ in range(7)]
    if RNG.random() < 0.5:
        return ":".join(groups[:4]) + "::" + groups[7]
    return ":".join(groups)


def nino():
    first = RNG.choice("ABCEGHJKLMNPRSTWXYZ")
    second = RNG.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        second = RNG.choice("ABCEGHJKLMNPRSTWXYZ")
    d = f"{RNG.randrange(10 ** 6):06d}"
    return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {RNG.choice('ABCD')}"


PHONES_INTL = ["+1 415 555 0132", "+44 20 7946 0958", "+49 30 901820", "+33 6 12 34 56 78", "+81 3-1234-5678",
               "+61 2 9374 4000", "+14155550132", "+353 1 677 0095", "+91 98765 43210", "+55 11 91234-5678",
               "+34 612 34 56 78", "+27 21 460 9111", "+1 (212) 555-0147", "+46 8 123 456 78", "+7 495 123-45-67"]
PHONES_NATIONAL = [("Phone", "(415) 555-0132"), ("tel", "020 7946 0958"), ("Mobile", "07700 900123"),
                   ("Tel.", "030 1234567"), ("mobile", "06 12 34 56 78"), ("Call", "212-555-0147"), ("Fax", "(312) 555-0199"),
                   ("Contact", "646.555.0123"), ("cell", "0161 496 0000"), ("SMS", "917-555-0181")]


def case(cases, rid, hook, tool, payload, expect):
    cases.append({"id": f"{rid}-{len(cases) + 1}", "hook": hook, "method": "tools/call", "tool": tool,
                  "payload": payload, "expect": expect})


def positives():
    c = []
    for i in range(12):
        f, l = person()
        e = email()
        case(c, "email", "response", "crm_search", result_text(f"Found 1 contact:\n{f} {l} <{e}>, Account Manager, EMEA"), ["pii.email"])
        case(c, "email", "response", "get_user", {"content": [{"type": "text", "text": "ok"}], "structuredContent": {"id": RNG.randrange(10 ** 5), "name": f"{f} {l}", "email": email()}}, ["pii.email"])
        case(c, "email", "request", "send_email", call("send_email", {"to": email(), "subject": "Your invoice", "body": "Please find attached."}), ["pii.email"])
    for p in PHONES_INTL:
        f, l = person()
        case(c, "phone", "response", "crm_search", result_text(f"{f} {l} — {p} — last contacted 2026-11-02"), ["pii.phone"])
        case(c, "phone", "response", "get_user", {"structuredContent": {"name": f"{f} {l}", "phone": p}, "content": []}, ["pii.phone"])
    for word, p in PHONES_NATIONAL:
        case(c, "phone", "response", "lookup_vendor", result_text(f"Northwind Traders\n{word}: {p}\nTerms: net 30"), ["pii.phone"])
        case(c, "phone", "response", "lookup_vendor", result_text(f"Reach the site manager ({word.lower()} {p}) before 9am."), ["pii.phone"])
    for i in range(14):
        n = card()
        case(c, "card", "response", "get_payment", {"structuredContent": {"card_number": n, "exp": "08/29", "amount": 129.5}, "content": []}, ["pii.payment-card"])
        case(c, "card", "response", "support_ticket", result_text(f"Customer says the charge on card {group(n)} was declined twice."), ["pii.payment-card"])
        case(c, "card", "request", "refund", call("refund", {"reason": "duplicate", "note": f"Refund to the Visa/Mastercard ending in {n[-4:]}: full PAN {n}"}), ["pii.payment-card"])
    for i in range(6):
        n = luhn_complete("4", 16)
        case(c, "card", "response", "export_csv", result_text(f"name,amount,reference\nJ. Doe,19.99,{group(n)}"), ["pii.payment-card"])
        case(c, "card", "request", "charge", call("charge", {"amount": 42, "card": int(luhn_complete(RNG.choice(["51", "2221", "4"]), 16))}), ["pii.payment-card"])
    for i in range(10):
        s = ssn()
        case(c, "ssn", "response", "hr_lookup", {"structuredContent": {"employee": "E-" + str(RNG.randrange(10 ** 4)), "ssn": s}, "content": []}, ["pii.us-ssn"])
        case(c, "ssn", "response", "read_file", result_text(f"W-9 received. Taxpayer SSN {s.replace('-', '')} verified."), ["pii.us-ssn"])
        case(c, "ssn", "response", "read_file", result_text(f"Applicant: {' '.join(person())}, DOB 1988-04-12, {s}"), ["pii.us-ssn"])
    for country in IBAN_FORMATS:
        i = iban(country)
        case(c, "iban", "response", "get_supplier", result_text(f"Pay to: Globex GmbH\nIBAN: {spaced(i)}\nBIC: DEUTDEFF"), ["pii.iban"])
        case(c, "iban", "request", "create_payout", call("create_payout", {"beneficiary": "Globex", "iban": iban(country), "amount": "1200.00"}), ["pii.iban"])
    for i in range(15):
        ip = public_v4()
        case(c, "ipv4", "response", "search_logs", result_text(f'{ip} - - [30/Nov/2026:10:22:04 +0000] "GET /login HTTP/1.1" 200 512'), ["pii.ipv4"])
        case(c, "ipv4", "response", "audit_events", {"structuredContent": {"events": [{"type": "login", "source_ip": public_v4(), "user": "u-" + str(i)}]}, "content": []}, ["pii.ipv4"])
    for i in range(10):
        case(c, "ipv6", "response", "search_logs", result_text(f"session opened from {public_v6()} (Germany)"), ["pii.ipv6"])
        case(c, "ipv6", "response", "audit_events", {"structuredContent": {"client_ip": public_v6()}, "content": []}, ["pii.ipv6"])
    for i in range(6):
        case(c, "nino", "response", "hr_lookup", result_text(f"Payroll record: National Insurance number {nino()}, tax code 1257L"), ["pii.uk-nino"])
        case(c, "nino", "response", "hr_lookup", {"structuredContent": {"nino": nino().replace(" ", "")}, "content": []}, ["pii.uk-nino"])
    # Several kinds in one result.
    for i in range(8):
        f, l = person()
        e, p, n = email(), RNG.choice(PHONES_INTL), card()
        case(c, "mixed", "response", "crm_export", result_text(f"{f} {l}\nemail: {e}\nphone: {p}\ncard number: {n}"), ["pii.email", "pii.phone", "pii.payment-card"])
    return c


def near_misses():
    c = []
    b = lambda tool, p, hook="response": case(c, "benign", hook, tool, p, [])
    # 16-digit order ids and references that pass Luhn but carry no card context.
    for i in range(15):
        n = luhn_complete(RNG.choice(["4", "51", "37", "6011"]), 16)
        b("get_order", {"structuredContent": {"order_id": n, "status": "shipped", "items": 3}, "content": []})
        b("get_order", result_text(f"Order {n} shipped via DHL, tracking {rand('d', 12)}"))
    for i in range(10):
        n = card()
        b("get_payment", {"structuredContent": {"card_number": luhn_break(n)}, "content": []})
        b("search_logs", result_text(f"invoice {luhn_break(n)} reconciled"))
    for i in range(8):
        b("metrics", result_text(f"ts={1732982400000 + RNG.randrange(10 ** 9)} value={RNG.random():.4f} host=web-{i}"))
        b("get_shipment", result_text(f"Tracking number {rand('d', 18)} — out for delivery"))
    # Emails that are not personal data.
    for t in ["Contact support@example.com for help", "See docs at admin@example.org", "icon@2x.png", "logo@3x.webp",
              "git clone git@github.com:acme/infra.git", "npm i @types/node@20.11.5", "ssh deploy@bastion.local",
              "user@localhost", "name@test", "Send to <email> when ready", "@dana please review", "ops@staging.invalid"]:
        b("read_file", result_text(t))
    # Numbers shaped like phones without a phone word; dates, times, versions.
    for t in ["ref 415-555-0132", "SKU 212-555-0147", "build 0612 3456 7890", "2026-11-30 10:22:04", "version 2.10.3-1",
              "Released 1.24.3 on 2026-11-30", "+1 vote from the reviewers", "Chapter 020 7946 pages", "up +12.5% week over week",
              "ISBN 978-3-16-148410-0", "Lat 37.7749, Lon -122.4194", "PO Box 4417, 94105-1234"]:
        b("read_file", result_text(t))
    # SSN-shaped numbers that cannot be SSNs, or lack context.
    for t in ["SSN 000-12-3456", "SSN 666-45-1234", "ssn: 912-34-5678", "SSN 536-00-8140", "SSN 536-22-0000",
              "Sample card shows 078-05-1120", "ssn 219-09-9999", "Example SSN 123-45-6789", "ref 536228140", "zip 941051234"]:
        b("read_file", result_text(t))
    # IBAN-shaped strings with a wrong checksum or length.
    for country in IBAN_FORMATS:
        b("get_supplier", result_text(f"IBAN: {spaced(iban(country, valid=False))}"))
    for t in ["DE8937040044053201300", "GB82WEST1234569876543", "XX12345678901234567890", "Account NL91 ABNA"]:
        b("get_supplier", result_text(t))
    # Addresses that identify no one, and things that parse like addresses.
    for t in ["10.0.0.12", "192.168.1.1", "172.16.4.20", "127.0.0.1", "0.0.0.0", "203.0.113.7", "198.51.100.23",
              "192.0.2.10", "255.255.255.0", "224.0.0.251", "100.64.1.5", "169.254.169.254", "version 10.0.19045.3693",
              "Chrome/120.0.6099.109 Safari/537.36", "v1.2.3.4", "1.2.3.4.5", "2001:db8::1", "fe80::1ff:fe23:4567:890a",
              "::1", "fd12:3456:789a::1", "ff02::1", "10:22:04", "00:1a:2b:3c:4d:5e", "std::vector<int>", "a::b::c",
              "release 4.18.0.147"]:
        b("search_logs", result_text(f"peer {t} ok"))
    # NINO-shaped strings without context or with impossible prefixes.
    for t in ["part AB123456C", "National Insurance number: QQ 12 34 56 C", "NI number GB123456A", "model JG103285A"]:
        b("hr_lookup", result_text(t))
    # Ordinary results with numbers in them.
    for i in range(25):
        b("get_weather", result_text(f"Lisbon: {RNG.randrange(5, 30)}°C, humidity {RNG.randrange(40, 90)}%, wind {RNG.randrange(0, 40)} km/h, station {rand('d', 5)}"))
        b("get_order", {"structuredContent": {"id": uuid(), "total_cents": RNG.randrange(100, 10 ** 6), "quantity": RNG.randrange(1, 20),
                                              "sku": f"SKU-{rand('U', 8)}", "created": "2026-11-30T10:22:04Z"}, "content": []})
        b("query", result_text(json.dumps([{"region": "eu", "revenue": RNG.randrange(10 ** 8), "orders": RNG.randrange(10 ** 6)}])))
    return c


def cases():
    return positives() + near_misses()
