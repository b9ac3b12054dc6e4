from setuptools import find_packages, setup

package_name = "vla_safety"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="VLA team",
    maintainer_email="vla-team@robotics-lab.org",
    description="Safety monitor node between the controller and the robot: limits, watchdog, e-stop.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "safety_monitor = vla_safety.safety_monitor_node:main",
        "bench_safety = vla_safety.bench_safety:main",
    ]},
)
