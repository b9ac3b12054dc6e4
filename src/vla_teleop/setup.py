from setuptools import find_packages, setup

package_name = "vla_teleop"

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
    description="Teleoperation sources and the demonstration collector node.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "teleop_collector = vla_teleop.teleop_collector_node:main",
        "bench_record = vla_teleop.bench_record:main",
        "scripted_teleop = vla_teleop.scripted_teleop_node:main",
        "joy_teleop = vla_teleop.teleop_sources_node:joy_main",
        "keyboard_teleop = vla_teleop.teleop_sources_node:keyboard_main",
    ]},
)
