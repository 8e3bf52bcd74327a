"""Package metadata, read from `settings.ini` (the nbdev 2 layout)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

here = Path(__file__).parent
cfg = ConfigParser(delimiters=["="])
cfg.read(here / "settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

requirements = cfg["requirements"].split()
extras = {
    "tensorflow": ["tensorflow-cpu>=2.16; platform_machine=='x86_64'",
                   "tensorflow>=2.16; platform_machine!='x86_64'"],
    "jax": ["jax>=0.4.30"],
    "torch": ["torch>=2.2"],
    "dev": cfg["dev_requirements"].split() + ["playwright"],
    "lab": ["jupyterlab"],                      # `make lab`: the lessons in JupyterLab (ipywidgets is a requirement)
}
extras["all"] = sorted({r for name in ("tensorflow", "jax", "torch", "dev", "lab") for r in extras[name]})

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    url=cfg["git_url"],
    license="Apache-2.0",
    keywords=cfg["keywords"].split(),
    python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=["gan_tl_course", "gan_tl_course.*"]),
    package_data={"gan_tl_course": ["assets/*"]},
    include_package_data=True,
    install_requires=requirements,
    extras_require=extras,
    entry_points={
        "console_scripts": cfg["console_scripts"].split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
