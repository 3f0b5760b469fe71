# The embeddable API: libspringboard.so, built from the C API
# (runtime/api/capi.cpp) over the internal static library, exporting only the
# sb_* functions (springboard.map); and its installation with a CMake
# package (find_package(springboard) -> springboard::springboard) and a
# pkg-config file (springboard.pc), both relocatable. The library's own
# dependencies (LLVM, Capstone, Unicorn, fmt: shared Debian libraries) are
# its DT_NEEDED entries, so consumers link -lspringboard alone.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(springboard_shared SHARED runtime/api/capi.cpp)
set_target_properties(springboard_shared PROPERTIES
  OUTPUT_NAME springboard EXPORT_NAME springboard
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  INSTALL_RPATH_USE_LINK_PATH ON
  LINK_DEPENDS ${CMAKE_SOURCE_DIR}/cmake/springboard.map)
target_link_libraries(springboard_shared PRIVATE springboard)
target_link_options(springboard_shared PRIVATE
  -Wl,--version-script=${CMAKE_SOURCE_DIR}/cmake/springboard.map -Wl,--no-undefined)
target_include_directories(springboard_shared INTERFACE
  $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/runtime/api> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
add_library(springboard::springboard ALIAS springboard_shared)

install(TARGETS springboard_shared EXPORT springboardTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES runtime/api/springboard.h runtime/api/springboard.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS springboard-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(sb_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/springboard)
install(EXPORT springboardTargets NAMESPACE springboard:: DESTINATION ${sb_cmake_dir})
configure_package_config_file(cmake/springboardConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/springboardConfig.cmake INSTALL_DESTINATION ${sb_cmake_dir})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/springboardConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/springboardConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/springboardConfigVersion.cmake
        DESTINATION ${sb_cmake_dir})

# The .pc file finds the prefix from its own place (pcfiledir), so that
# `cmake --install --prefix DIR` anywhere gives a working file.
file(RELATIVE_PATH SB_PC_PREFIX_FROM_PCDIR /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" SB_PC_PREFIX_FROM_PCDIR "${SB_PC_PREFIX_FROM_PCDIR}")
configure_file(cmake/springboard.pc.in ${CMAKE_CURRENT_BINARY_DIR}/springboard.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/springboard.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
