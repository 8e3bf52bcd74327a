"""Draw the same 32 latent vectors through two generators, one above the other, into one PNG.

Usage: python bench/emoji32_cpu/before_after.py OLD.keras NEW.keras OUT.png
(the first source: git show 8f4304f:gan_tl_course/assets/source_emoji32_generator.keras > old.keras)"""
import sys

import numpy as np

from gan_tl_course.core import image_grid, save_png, to_uint8
from gan_tl_course.models import latent_dim_of, load_model_file
from gan_tl_course.train import generate_images

old_path, new_path, out = sys.argv[1:4]
old, new = (load_model_file(p, "generator") for p in (old_path, new_path))
z = np.random.default_rng(0).standard_normal((32, latent_dim_of(old))).astype("float32")
gap = np.full((16, *old.output_shape[1:]), 255, np.uint8)                 # one white row between the two
grid = image_grid(np.concatenate([to_uint8(generate_images(old, z)), gap, to_uint8(generate_images(new, z))]), ncols=16)
save_png(np.kron(grid, np.ones((2, 2, 1), np.uint8)), out)                 # doubled in size, pixels kept sharp
