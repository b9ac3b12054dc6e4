from glob import glob

from setuptools import find_packages, setup

package_name = "vla_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py") + glob("launch/*.yaml")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        # one folder of parameter files per robot: config/<robot>/*.yaml
        *[(f"share/{package_name}/{d}", glob(f"{d}/*.yaml")) for d in sorted(x.rstrip("/") for x in glob("config/*/"))],
        # the trained default policies shipped with the demo: policies/<robot>/ (a checkpoint directory)
        *[(f"share/{package_name}/{d}", glob(f"{d}/*")) for d in sorted(x.rstrip("/") for x in glob("policies/*/"))],
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="VLA team",
    maintainer_email="vla-team@robotics-lab.org",
    description="Launch files, node graphs and parameter files of the VLA workspace.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},
)
