from setuptools import find_packages, setup

package_name = "vla_ros"

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
    description="rclpy glue shared by every node of the workspace: the one node runner.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},
)
