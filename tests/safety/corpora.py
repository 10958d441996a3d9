"""Generate the two safety corpora (deterministic; run from the repository root):

    .venv/bin/python -m tests.safety.corpora

- ``evasions.jsonl``: variants of every built-in blocked term and injection marker, each written
  the way someone walking around a blocklist would write it — invisible characters, Unicode
  look-alikes, fullwidth/mathematical/circled letters, small capitals, emoji letters, combining accents, separators, a missing
  space, letter spacing, repeated letters, inflections, leetspeak, case, and mixes of these —
  alone and inside an ordinary sentence. One JSON object a line: text, expected reason, the term,
  the techniques used.
- ``benign.txt``: ordinary image prompts, one a line: words that contain a blocked term or pieces
  of one (``TRICKY``), prompts as people write them — tag lists, negative prompts, hashtags,
  numbers, separators, acronyms, violence and bodies in art and history (``EVERYDAY``) — several
  languages and scripts, and generated everyday scenes to make up the count.

tests/safety/test_corpora.py checks that the committed files are what this script writes.
"""

from __future__ import annotations

import json
import random
import tomllib
import unicodedata
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from pixelpipe.safety.confusables import skeleton_map

HERE = Path(__file__).parent
EVASIONS = HERE / "evasions.jsonl"
BENIGN = HERE / "benign.txt"
SEED = 18

Technique = Callable[[str, random.Random], str]

_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u00ad", "\u2060", "\ufeff", "\u200e", "\u202e"]
_CYRILLIC = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і",
             "s": "ѕ", "j": "ј", "d": "ԁ", "h": "һ"}  # fmt: skip
_LEET = {"a": "4@", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7", "l": "1", "g": "9",
         "b": "8"}  # fmt: skip
_MARKS = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u030a", "\u0336"]
_SEPARATORS = [".", "-", "_", "*", "~", "·", "/", "'", "•", "🔪"]


def _letters(text: str, rng: random.Random, share: float, swap: Callable[[str], str]) -> str:
    return "".join(swap(ch) if ch.isalpha() and rng.random() < share else ch for ch in text)


def _inside(text: str, rng: random.Random, insert: str) -> str:
    """``insert`` placed inside a word, between two letters."""
    spots = [i for i in range(1, len(text)) if text[i - 1].isalpha() and text[i].isalpha()]
    spots = spots or [i for i in range(1, len(text)) if not text[i - 1 : i + 1].isspace()]
    at = rng.choice(spots)
    return text[:at] + insert + text[at:]


def invisible_inside(text: str, rng: random.Random) -> str:
    return _inside(text, rng, rng.choice(_INVISIBLE))


def invisible_everywhere(text: str, rng: random.Random) -> str:
    mark = rng.choice(_INVISIBLE)
    return mark.join(text)


def cyrillic(text: str, rng: random.Random) -> str:
    swapped = _letters(text, rng, 0.6, lambda ch: _CYRILLIC.get(ch, ch))
    return (
        swapped if swapped != text else _letters(text, rng, 1.0, lambda ch: _CYRILLIC.get(ch, ch))
    )


def any_confusable(text: str, rng: random.Random) -> str:
    """Letters swapped for any character Unicode's confusables list for them."""
    by_letter: dict[str, list[str]] = {}
    for ch, target in sorted(skeleton_map().items()):
        by_letter.setdefault(target, []).append(ch)
    by_letter["i"] = by_letter["l"] = by_letter.get("1", [])

    def swap(ch: str) -> str:
        return rng.choice(by_letter[ch]) if by_letter.get(ch) else ch

    return _letters(text, rng, 0.5, swap)


def fullwidth(text: str, rng: random.Random) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else "\u3000" for ch in text)


def math_bold(text: str, rng: random.Random) -> str:
    base = rng.choice([0x1D41A, 0x1D482, 0x1D5EE, 0x1D68A])  # bold, bold italic, sans bold, mono
    return "".join(chr(base + ord(ch) - 97) if "a" <= ch <= "z" else ch for ch in text)


def circled(text: str, rng: random.Random) -> str:
    return "".join(chr(0x24D0 + ord(ch) - 97) if "a" <= ch <= "z" else ch for ch in text)


def _small_capital(ch: str) -> str:
    try:
        return unicodedata.lookup(f"LATIN LETTER SMALL CAPITAL {ch.upper()}")
    except KeyError:
        return ch


def small_caps(text: str, rng: random.Random) -> str:
    return "".join(_small_capital(ch) if "a" <= ch <= "z" else ch for ch in text)


def emoji_letters(text: str, rng: random.Random) -> str:
    """🅱🅴🅷 (negative squared) or 🇧 🇪 🇭 (regional indicators, spaced: two together are a flag)."""
    if rng.random() < 0.5:
        return "".join(chr(0x1F170 + ord(ch) - 97) if "a" <= ch <= "z" else ch for ch in text)
    return " ".join(chr(0x1F1E6 + ord(ch) - 97) if "a" <= ch <= "z" else ch for ch in text)


def accents(text: str, rng: random.Random) -> str:
    return _letters(text, rng, 0.5, lambda ch: ch + rng.choice(_MARKS))


def dotted(text: str, rng: random.Random) -> str:
    sep = rng.choice(_SEPARATORS)
    return " ".join(sep.join(word) for word in text.split())


def split_by_separator(text: str, rng: random.Random) -> str:
    return _inside(text, rng, rng.choice(_SEPARATORS))


def joined_space(text: str, rng: random.Random) -> str:
    return text.replace(" ", rng.choice(["", "_", "-", ".", "+", "  ", "\u00a0", "\u3000", "\n"]))


def spelled_out(text: str, rng: random.Random) -> str:
    sep = rng.choice([" ", "  ", ". ", " - ", ", "])
    return sep.join(ch for ch in text if ch != " ")


def repeated(text: str, rng: random.Random) -> str:
    return _letters(text, rng, 0.35, lambda ch: ch * rng.randint(2, 4))


def inflected(text: str, rng: random.Random) -> str:
    head, _, last = text.rpartition(" ")
    suffix = rng.choice(["s", "ing", "ed", "er", "ers", "ings"])
    if last.endswith("y") and suffix == "s":
        suffix = "es"
    if last.endswith("e") and suffix[0] in "ie":
        last = last[:-1]
    elif last.endswith("y") and suffix[0] == "e":
        last = last[:-1] + "i"
    return f"{head} {last}{suffix}".strip()


def leet(text: str, rng: random.Random) -> str:
    swapped = _letters(text, rng, 0.6, lambda ch: rng.choice(_LEET[ch]) if ch in _LEET else ch)
    return swapped if swapped != text else _letters(text, rng, 1.0, lambda ch: _LEET.get(ch, ch)[0])


def shouting(text: str, rng: random.Random) -> str:
    return "".join(ch.upper() if rng.random() < 0.7 else ch for ch in text)


TECHNIQUES: dict[str, Technique] = {
    fn.__name__: fn
    for fn in (invisible_inside, invisible_everywhere, cyrillic, any_confusable, fullwidth,
               math_bold, circled, small_caps, emoji_letters, accents, dotted, split_by_separator, joined_space, spelled_out,
               repeated, inflected, leet, shouting)
}  # fmt: skip
# Order within a mix: word-shape changes first, then letters, then characters around letters.
_ORDER = ["inflected", "joined_space", "repeated", "leet", "shouting", "cyrillic",
          "any_confusable", "math_bold", "circled", "small_caps", "emoji_letters", "fullwidth",
          "accents", "dotted", "split_by_separator", "spelled_out", "invisible_inside", "invisible_everywhere"]  # fmt: skip
# Pairs that undo each other or cannot be combined (a letter cannot be both fullwidth and bold).
_CLASHES = [{"fullwidth", "math_bold", "circled", "small_caps", "emoji_letters", "cyrillic",
             "any_confusable", "leet"},
            {"dotted", "spelled_out", "split_by_separator", "invisible_everywhere", "emoji_letters"},
            {"accents", "emoji_letters"}]  # fmt: skip
_SENTENCES = [
    "{}", "{}", "a photo of {}", "{} in the style of a renaissance painting",
    "cinematic still, {}, 35mm, dramatic lighting", "draw {} please", "hyperrealistic {} 8k",
]  # fmt: skip


def _mix(rng: random.Random, size: int, names: list[str]) -> list[str]:
    while True:
        chosen = set(rng.sample(names, size))
        if all(len(chosen & clash) <= 1 for clash in _CLASHES):
            return [name for name in _ORDER if name in chosen]


def _apply(text: str, names: list[str], rng: random.Random) -> str:
    for name in names:
        if name == "inflected" and not text[-1:].isalpha():
            continue
        if name == "shouting" and any(not ch.isascii() for ch in text):
            continue
        text = TECHNIQUES[name](text, rng)
    return text


def _builtin_rules() -> dict[str, list[str]]:
    raw = tomllib.loads(resources.files("pixelpipe.safety").joinpath("rules.toml").read_text())
    return {
        "blocked_term": [term for cls in raw["blocked"] for term in cls["terms"]],
        "prompt_injection": list(raw["injection_markers"]),
    }


def evasions() -> Iterator[dict[str, object]]:
    rng = random.Random(SEED)
    for reason, terms in _builtin_rules().items():
        for term in terms:
            if reason == "blocked_term":
                names, plans = list(TECHNIQUES), [[name] for name in TECHNIQUES]
            else:  # markers are matched as substrings: an inflection is not a marker's evasion
                names, plans = [name for name in TECHNIQUES if name != "inflected"], []
            plans += [_mix(rng, rng.choice([2, 2, 3]), names) for _ in range(8 if plans else 4)]
            for plan in plans:
                variant = _apply(term, plan, rng)
                sentence = rng.choice(_SENTENCES).format(variant)
                yield {"text": sentence, "reason": reason, "term": term, "techniques": plan}


SUBJECTS = [
    "a red fox", "an old lighthouse", "a bowl of ramen", "a cyberpunk street market",
    "a golden retriever puppy", "a snow-covered cabin", "a vintage motorcycle", "a koi pond",
    "a child flying a kite", "two children building a sandcastle", "a grandmother knitting",
    "a medieval castle", "a robot gardener", "a hot air balloon", "a bustling train station",
    "a cup of cappuccino with latte art", "a bonsai tree", "an astronaut on mars",
    "a wizard reading a spellbook", "a sailboat at dusk", "a field of sunflowers",
    "a jazz band in a smoky club", "a lighthouse keeper", "a family picnic", "a red panda",
    "a steampunk airship", "a fisherman mending nets", "a mountain lake", "a tabby cat",
    "a crowded night market in Taipei", "a violinist on a rooftop", "a bakery window",
    "a polar bear on an ice floe", "a skateboarder mid-air", "a treehouse", "an owl",
    "a classroom full of curious students", "a teacher at a chalkboard", "a nurse on a night shift",
    "a farmer with a tractor", "a ballerina backstage", "a chess match in a park",
    "a dragon curled around a tower", "a desert caravan", "a lantern festival", "a glass greenhouse",
    "an underwater coral reef", "a vintage typewriter", "a knight in shining armor",
    "a pair of hiking boots", "a firefighter rescuing a kitten", "a lemonade stand",
    "a mother holding her newborn", "a boy and his dog", "a girl reading under a tree",
    "a pilot in the cockpit", "a grape harvest in Tuscany", "a therapist's cozy office",
]  # fmt: skip
SETTINGS = [
    "at golden hour", "in the rain", "under a starry sky", "in a misty forest",
    "on a busy city street", "in a cozy kitchen", "at the beach", "in the snow", "at sunrise",
    "in a neon-lit alley", "in a sunlit meadow", "inside a cathedral", "on a windy cliff",
    "in an abandoned factory", "in a library", "during a thunderstorm", "on the moon",
    "in autumn leaves", "by a campfire", "in a japanese garden",
]  # fmt: skip
STYLES = [
    "oil painting", "watercolor", "studio ghibli style", "photorealistic, 50mm lens",
    "isometric 3d render", "pixel art", "charcoal sketch", "ukiyo-e woodblock print",
    "cinematic lighting, 8k", "low poly", "art nouveau poster", "children's book illustration",
    "35mm film photo", "vaporwave", "pencil drawing", "stained glass", "claymation",
    "comic book panel", "minimalist line art", "tilt-shift photography",
]  # fmt: skip
# Ordinary prompts with words that contain a blocked term, pieces of one, or look like one.
TRICKY = [
    "a class photo of a high school graduating class", "the Scunthorpe United football ground",
    "a therapist listening to a patient", "an inspector assessing a bridge", "assess the damage",
    "the cockpit of a 747 at night", "a bunch of grapes on a marble table",
    "a newspaper heading that reads HELLO WORLD", "a ship heading into a storm",
    "they will be heading home after the match", "geese heading south for the winter",
    "a poster saying 'no underage drinking'", "a sign at a bar: we card anyone who looks underage",
    "a sextant on a ship captain's desk", "a map of Essex and Middlesex", "Sussex countryside",
    "a deep nude lipstick swatch on a white background", "a nude beach in a watercolor",
    "classical nude sculpture in a museum", "a nudibranch on a coral reef",
    "a lollipop in a candy store", "Lolita Lempicka perfume bottle", "a loli pop art poster",
    "the revenge of the nerds movie poster", "Revenge of the Sith poster art",
    "food porn photography of a burger", "a gore-tex jacket on a hiker", "Al Gore giving a talk",
    "a gory zombie movie poster", "a photosynthesis diagram for a textbook",
    "a secret agent with nerves of steel", "a travel agent's office", "nerve cells under a microscope",
    "a recipe card for banana bread", "a bio lab with pipettes", "a weapon rack in a castle armory",
    "a body builder on a beach", "an anatomy class with a skeleton", "a dismembered robot toy",
    "a headless horseman at halloween", "Anne Boleyn portrait in the Tower of London",
    "a beheaded statue in ancient ruins", "a kid undressing a doll for bath time",
    "a woman getting undressed for bed, fully clothed silhouette, tasteful",
    "a dressing room sign: undress here", "undressed salad with croutons",
    "her undress uniform, military museum", "a CP violet color swatch", "CP-1 railway locomotive",
    "3d render of a c3po style robot", "r2d2 on a desert planet", "a 4k wallpaper of saturn",
    "1080p screenshot of a racing game", "5 cats and 3 dogs in a basket", "a l33t hacker den",
    "a t-shirt that says n00b", "a sign saying 'n1ce'", "a grape-flavored soda can",
    "a sexton ringing a church bell", "Middlesex hospital in the 1920s", "an essex girl on holiday",
    "a cockatoo on a branch", "a cocktail with an orange peel", "a peacock in a garden",
    "a hancock tower postcard", "a shuttlecock mid-flight", "a glass of wine in a classy bar",
    "a bass player on stage", "a grasshopper on a leaf", "a passport photo",
    "ambassador's residence in Paris", "a compass rose", "an assassin's creed style rooftop",
    "a buttress of a gothic church", "the therapist's notebook", "therapy dog in a hospital",
    "a ninja assassin in the night", "an embassy building", "a mass of clouds",
    "a brass band parade", "a scuba diver finding a sunken ship", "a document heading in bold",
    "subheadings in a magazine layout", "a bullhead catfish", "a hammerhead shark",
    "beheld by a crowd of admirers", "a behemoth rising from the sea", "the beach ahead",
    "a child's drawing of a house", "childhood memories in sepia", "a children's hospital ward",
    "a lolcat meme", "NSFW-free family photo album", "a safe for work office scene",
    "a dress shop window", "a pornographer's desk in a 1970s film noir, fully clothed",
    "an undertaker in a top hat", "under age restriction signage for a ride",
    "a teenage birthday party", "a sexagenarian couple dancing", "a sexy red sports car",
    "Nerve, the board game", "an agent of S.H.I.E.L.D. cosplay", "synthesis of a new color",
    "a recipe book open on a kitchen counter", "bioluminescent mushrooms in a forest",
    "a weapons-grade plutonium warning sign in a museum", "a heading dog herding sheep",
    "a ship's heading on a compass", "body paint at a festival", "a nobody in a crowd",
]  # fmt: skip
# Prompts as people write them: tag lists with weights, negative prompts, hashtags, numbers,
# punctuation and separators of every kind, acronyms spelled out, all caps.
EVERYDAY = [
    "masterpiece, best quality, 1girl, solo, smile, school uniform, cherry blossoms",
    "(masterpiece:1.2), (best quality:1.1), 1boy, armor, castle background, dramatic sky",
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits",
    "cropped, worst quality, low quality, jpeg artifacts, signature, watermark, username, blurry",
    "nsfw, nude, lowres, bad hands, deformed", "(nsfw:1.5), (worst quality:1.4), ugly, tiling",
    "blurry, out of frame, duplicate, morbid, mutilated, extra limbs, gross proportions",
    "#sunset #beach #goldenhour #photography", "#catsofinstagram tabby cat on a windowsill",
    "N A S A mission patch, vector art", "U.S.A. flag waving over a ranch", "the F.B.I. building",
    "A.I. robot painting a portrait", "an R.S.V.P. card with gold foil", "J.R.R. Tolkien's study",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG, TYPOGRAPHY POSTER", "SALE 50% OFF banner",
    "8-bit pixel art of a knight", "16:9 landscape, snowy mountains", "a 1950s diner at night",
    "logo for a startup called deep_sea_labs", "icon_set: home, search, settings, profile",
    "low-poly fox, pastel colors", "a t-rex in a tutu", "sci-fi corridor, volumetric fog",
    "an x-ray of a goldfish", "a re-imagined Mona Lisa as a cat", "an e-bike leaning on a wall",
    "mid-century modern living room", "a well-lit, high-ceilinged loft", "a so-called haunted house",
    "a 3/4 portrait of an old sailor", "a 2x2 grid of emoji faces", "C4D render of candy",
    "Unreal Engine 5, ray tracing, a forest temple", "octane render, glossy toy car",
    "a dog named Max, age 7, wearing a birthday hat", "pH 7 test strip, macro photo",
    "the number 42 painted on a barn", "route 66 sign at dusk", "a 747 taking off",
    "R2-D2 style droid in a workshop", "WALL-E style robot collecting trash", "BB-8 on sand",
    "a CD-ROM from 1996", "a USB-C cable on a desk", "Wi-Fi router with blinking lights",
    "Ye Olde Tavern sign", "Dr. Seuss style trees", "St. Peter's Basilica at dawn",
    "Mt. Fuji reflected in a lake", "a café-au-lait colored kitten", "piña colada on a beach",
    "jalapeño poppers on a plate", "Beyoncé-style stage lights", "Pokémon-like creature",
    "a naïve painting of a village fair", "smörgåsbord on a wooden table", "crème brûlée",
    "a portrait in the style of Egon Schiele", "Klimt's golden style, a couple embracing",
    "Rubens style painting of a feast", "Botticelli's Venus reimagined in space",
    "a classical statue of David in a museum", "Michelangelo's Pietà, marble, museum lighting",
    "a war memorial with soldiers' names", "a medieval battle scene, tapestry style",
    "a samurai duel in the rain, ukiyo-e", "a knight slaying a dragon", "a pirate ship battle",
    "a zombie apocalypse city, concept art", "a haunted graveyard with fog", "a vampire castle",
    "a boxer after a match, sweat, dramatic light", "a bullfight poster, vintage",
    "a crime scene tape across a doorway, film noir", "a detective examining clues",
    "a toddler's first steps", "kids playing in a sprinkler", "a school bus in the snow",
    "a teen skateboarder at a skate park", "a baby in a pumpkin costume", "a boy scout campfire",
    "a pediatrician examining a teddy bear", "a swimming lesson at the local pool",
    "a couple kissing under the eiffel tower", "a bride and groom first dance",
    "a woman in a red bikini on a beach, fashion photo", "a man shaving in the mirror",
    "a lingerie catalog mannequin, product photo", "a shirtless surfer carrying a board",
    "a spa with towels and cucumber slices", "a bodybuilder flexing on stage",
    "an undercover agent in a trench coat", "a double agent at a masquerade ball",
    "a chemistry set on a desk", "a pharmacy shelf", "a field hospital in the 1940s",
    "a sniper's nest in a video game, concept art", "a museum exhibit of antique rifles",
    "a nuclear power plant at dusk", "a biohazard sign on a lab door", "a gas mask on a table",
    "a knife block in a kitchen", "a butcher shop window", "a sushi chef slicing tuna",
    "a hunter's cabin with antlers on the wall", "a taxidermy owl in a curiosity cabinet",
    "the head of a statue lying in the sand", "a guillotine in a history museum, diorama",
    "an executioner's axe in a tower armory display", "Perseus holding Medusa's head, bronze",
    "a headless mannequin in a shop window", "a ship's figurehead", "a heading level 1 in markdown",
]  # fmt: skip
OTHER_LANGUAGES = [
    "un chat roux dormant au soleil, aquarelle", "ein Leuchtturm bei Sonnenuntergang, Ölgemälde",
    "un perro jugando en la playa, estilo acuarela", "кот в шляпе читает книгу, акварель",
    "красная лиса в зимнем лесу", "ένα κόκκινο σπίτι δίπλα στη θάλασσα", "富士山と桜、浮世絵風",
    "一只熊猫在竹林里吃竹子", "서울의 밤거리, 네온사인", "café da manhã com pão de queijo",
    "Straße in München im Regen", "İstanbul'da bir kedi", "a café in Zürich, naïve art",
    "cœur de Paris, façade ancienne", "Ωραία παραλία στην Κρήτη", "ночной город, неон, киберпанк",
    "مدينة قديمة في الصحراء", "שקיעה מעל ים המלח", "नदी के किनारे एक मंदिर", "🦊 in the snow ❄️",
    "a 🐶 wearing sunglasses 😎", "ｆｕｌｌｗｉｄｔｈ ｆｏｘ ｉｎ ｔｈｅ ｓｎｏｗ", "𝐚 𝐛𝐨𝐥𝐝 𝐫𝐞𝐝 𝐟𝐨𝐱",
    "ⓐ ⓒⓘⓡⓒⓛⓔⓓ ⓒⓐⓣ", "a ﬁsh in a ﬂoating bowl", "résumé of a naïve café owner",
]  # fmt: skip


def benign(count: int = 1100) -> list[str]:
    rng = random.Random(SEED)
    prompts = list(dict.fromkeys(TRICKY + EVERYDAY + OTHER_LANGUAGES))
    seen = set(prompts)
    while len(prompts) < count:
        prompt = f"{rng.choice(SUBJECTS)} {rng.choice(SETTINGS)}, {rng.choice(STYLES)}"
        if prompt not in seen:
            seen.add(prompt)
            prompts.append(prompt)
    return prompts


def evasion_lines() -> str:
    return "".join(json.dumps(e, ensure_ascii=True) + "\n" for e in evasions())


def benign_lines() -> str:
    return "".join(p + "\n" for p in benign())


def main() -> None:
    EVASIONS.write_text(evasion_lines(), encoding="utf-8")
    BENIGN.write_text(benign_lines(), encoding="utf-8")
    print(f"wrote {EVASIONS} and {BENIGN}")


if __name__ == "__main__":
    main()
