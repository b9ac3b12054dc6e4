from setuptools import find_packages, setup

package_name = "vla_inference"

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
    description="VLA controller node: policy inference with action-buffer replanning.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "vla_controller = vla_inference.vla_controller_node:main",
        "vla_policy = vla_inference.vla_policy_node:main",
        "bench_control = vla_inference.bench_control:main",
    ]},
)
