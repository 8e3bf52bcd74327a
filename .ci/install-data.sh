#!/usr/bin/env bash
# Offline data sources (DESIGN §5): Debian's Fashion-MNIST and Noto colour-emoji packages, the fonts that
# font_digits draws digits from (chapter 1), and Debian's chromium for the browser test of the widgets
# (tests/test_browser.py; skipped without it).
# As root they are installed; otherwise this says what to install (or use `--download` when online).
set -u
need=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf ] || need+=(fonts-dejavu-extra)
[ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need+=(fonts-liberation)
[ -f /usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf ] || need+=(fonts-humor-sans)
[ -f /usr/share/fonts/truetype/fifthhorseman/dkg.ttf ] || need+=(fonts-dkg-handwriting)
[ -f /usr/share/fonts/opentype/bwht/BecauseWeLearn-Regular.otf ] || need+=(fonts-bwht)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "missing data packages: ${need[*]}"
  echo "  install them with: sudo apt-get install ${need[*]}"
  echo "  or set GAN_TL_DATA to a folder holding fashion-mnist/ and NotoColorEmoji.ttf,"
  echo "  or let the library download Fashion-MNIST (gan-tl pretrain --download) when online."
fi
