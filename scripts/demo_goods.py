"""Draw the pictures of the demo town's goods (rewards/images/*.jpg), which the scheme pack
names with `image = "images/…"`. Flat drawings in the colours of the real things, so the
shop looks like the village's shelf, made here so no photo's rights are in question.

    .venv/bin/python scripts/demo_goods.py      # needs a Chinese font (fonts-wqy-microhei)
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "rewards" / "images"
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
SIZE = (480, 360)
BACKGROUND = (246, 241, 232)


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size)


def label(draw: ImageDraw.ImageDraw, box, text: str, size: int, fill, colour) -> None:
    draw.rounded_rectangle(box, radius=10, fill=fill)
    x0, y0, x1, y1 = box
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, font=font(size), fill=colour, anchor="mm")


def shadow(draw: ImageDraw.ImageDraw, cx: int, y: int, width: int) -> None:
    draw.ellipse((cx - width // 2, y - 12, cx + width // 2, y + 12), fill=(225, 216, 200))


def rice(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 318, 260)
    draw.rounded_rectangle((130, 70, 350, 318), radius=40, fill=(236, 222, 190),
                           outline=(190, 168, 126), width=4)
    draw.polygon([(150, 78), (240, 40), (330, 78)], fill=(222, 205, 166))
    draw.line((175, 62, 305, 62), fill=(160, 120, 70), width=6)
    label(draw, (165, 140, 315, 250), "大米", 64, (200, 40, 40), (255, 255, 255))
    draw.text((240, 285), "5 斤", font=font(30), fill=(120, 90, 50), anchor="mm")


def oil(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 320, 200)
    draw.rectangle((215, 40, 265, 78), fill=(200, 40, 40))
    draw.rounded_rectangle((150, 75, 330, 320), radius=36, fill=(242, 196, 48),
                           outline=(205, 150, 20), width=4)
    draw.rounded_rectangle((330, 110, 370, 220), radius=18, outline=(205, 150, 20), width=10)
    label(draw, (170, 150, 310, 250), "菜籽油", 40, (255, 250, 235), (170, 100, 0))
    draw.text((240, 285), "1.8 升", font=font(26), fill=(140, 90, 0), anchor="mm")


def dish_soap(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 320, 170)
    draw.polygon([(228, 30), (252, 30), (258, 70), (222, 70)], fill=(40, 120, 200))
    draw.rounded_rectangle((170, 68, 310, 320), radius=30, fill=(120, 200, 90),
                           outline=(70, 150, 50), width=4)
    label(draw, (185, 150, 295, 240), "洗洁精", 30, (255, 255, 255), (60, 130, 40))
    for x, y, r in ((350, 100, 18), (380, 150, 12), (345, 190, 9)):
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(150, 200, 230), width=3)


def laundry(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 320, 260)
    draw.rounded_rectangle((125, 90, 355, 320), radius=30, fill=(60, 130, 215),
                           outline=(35, 90, 170), width=4)
    draw.rounded_rectangle((255, 45, 345, 120), radius=24, outline=(35, 90, 170), width=14)
    draw.rectangle((150, 55, 200, 95), fill=(240, 240, 240))
    label(draw, (150, 160, 330, 260), "洗衣液", 42, (255, 255, 255), (35, 90, 170))
    draw.text((240, 290), "2 公斤", font=font(24), fill=(230, 240, 255), anchor="mm")


def towel(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 315, 300)
    colours = ((236, 120, 140), (110, 170, 220), (245, 245, 240))
    for index, colour in enumerate(colours):
        top = 230 - index * 70
        draw.rounded_rectangle((100, top, 380, top + 80), radius=22, fill=colour,
                               outline=(200, 190, 180), width=3)
        for x in range(120, 370, 24):
            draw.line((x, top + 66, x, top + 78), fill=(255, 255, 255), width=3)


def haircut(draw: ImageDraw.ImageDraw) -> None:
    for cx in (190, 290):  # the handles' rings
        draw.ellipse((cx - 42, 220, cx + 42, 304), outline=(40, 40, 40), width=14)
    draw.line((205, 230, 330, 50), fill=(150, 155, 165), width=22)
    draw.line((275, 230, 150, 50), fill=(120, 125, 135), width=22)
    draw.ellipse((230, 130, 250, 150), fill=(40, 40, 40))
    draw.rounded_rectangle((360, 60, 400, 300), radius=8, fill=(180, 120, 70))
    for y in range(70, 300, 14):
        draw.line((400, y, 430, y), fill=(180, 120, 70), width=6)


def nuts(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 318, 280)
    draw.rounded_rectangle((120, 90, 360, 318), radius=30, fill=(196, 150, 96),
                           outline=(150, 105, 60), width=4)
    draw.rectangle((120, 90, 360, 130), fill=(170, 120, 70))
    for x, y in ((185, 210), (240, 190), (295, 215), (210, 260), (275, 262)):
        draw.ellipse((x - 30, y - 20, x + 30, y + 20), fill=(120, 75, 40),
                     outline=(80, 45, 20), width=3)
        draw.line((x - 18, y, x + 18, y), fill=(160, 110, 70), width=3)
    draw.text((240, 110), "香榧", font=font(30), fill=(255, 245, 225), anchor="mm")


def plaque(draw: ImageDraw.ImageDraw) -> None:
    shadow(draw, 240, 322, 320)
    draw.rounded_rectangle((90, 50, 390, 310), radius=16, fill=(190, 30, 35),
                           outline=(212, 170, 60), width=10)
    draw.rounded_rectangle((115, 75, 365, 285), radius=8, outline=(212, 170, 60), width=3)
    draw.text((240, 150), "平安家庭", font=font(54), fill=(250, 215, 110), anchor="mm")
    draw.text((240, 235), "古来镇", font=font(28), fill=(250, 215, 110), anchor="mm")


GOODS = {"rice-5jin": rice, "cooking-oil": oil, "dish-soap": dish_soap,
         "laundry-liquid": laundry, "towel": towel, "haircut": haircut,
         "torreya-nuts": nuts, "safe-family": plaque}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for key, draw_it in GOODS.items():
        image = Image.new("RGB", SIZE, BACKGROUND)
        draw_it(ImageDraw.Draw(image))
        image.save(OUT / f"{key}.jpg", format="JPEG", quality=82, optimize=True)
        print(f"rewards/images/{key}.jpg")


if __name__ == "__main__":
    main()
