-- The warehouse database beside Airflow's metadata database (first start of the postgres service).
CREATE USER socialsync WITH PASSWORD 'socialsync';
CREATE DATABASE warehouse OWNER socialsync;
